"""The deployment files agree with the CLI."""

from pathlib import Path

import yaml

from services.cli import COMMANDS, parser

ROOT = Path(__file__).resolve().parents[2]


def test_every_service_command_in_the_compose_file_exists_in_the_cli():
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    commands = {name: svc["command"] for name, svc in compose["services"].items() if "command" in svc}
    assert set(commands) == {"ingest", "evaluator", "notifier", "query"}
    for name, command in commands.items():
        assert command[0] in COMMANDS, name
        parser().parse_args(command)  # flags too: argparse exits on an unknown one


def test_every_pingura_service_in_compose_talks_to_kafka():
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    for name in ("ingest", "evaluator", "notifier", "query"):
        env = compose["services"][name]["environment"]
        assert env["PINGURA_KAFKA_BOOTSTRAP"] == "kafka:9092", name


def test_the_dockerfile_installs_the_pingura_entry_point():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["pingura"]' in dockerfile and "pip install" in dockerfile

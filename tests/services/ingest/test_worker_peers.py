"""What ingest processes sharing the port (``PINGURA_INGEST_PROCESS=N``) need of each other that
is not HTTP: the setting's range, their ``process`` labels, a token snapshot each. The
processes themselves, on a real port: tests/e2e/test_ingest_processes.py."""

from __future__ import annotations

import os

import pytest

from services.ingest.worker_peers import process_label, snapshot_path
from shared.errors import ConfigError
from shared.settings import MAX_INGEST_PROCESSES, Settings


@pytest.mark.parametrize("value", ["0", "1", "2", str(MAX_INGEST_PROCESSES)])
def test_the_setting_takes_none_one_or_several(value):
    assert Settings.from_env({"PINGURA_INGEST_PROCESS": value}).ingest_process == int(value)


@pytest.mark.parametrize("value", ["-1", str(MAX_INGEST_PROCESSES + 1)])
def test_the_setting_refuses_what_is_out_of_its_range(value):
    with pytest.raises(ConfigError, match=f"PINGURA_INGEST_PROCESS: 0 .* 1 to {MAX_INGEST_PROCESSES}"):
        Settings.from_env({"PINGURA_INGEST_PROCESS": value})


def test_the_only_ingest_process_keeps_its_label_and_several_are_numbered():
    assert process_label(0, 1) == "ingest"
    assert [process_label(i, 3) for i in range(3)] == ["ingest-0", "ingest-1", "ingest-2"]


def test_the_first_keeps_the_one_process_snapshot_and_another_starts_from_it(tmp_path):
    first = tmp_path / "ingest-tokens.snapshot"
    assert snapshot_path(tmp_path, 0) == first
    own = snapshot_path(tmp_path, 1)
    assert own == tmp_path / "ingest-tokens-1.snapshot" and not own.exists()  # nothing to start from
    first.write_bytes(b"first's copy")
    assert snapshot_path(tmp_path, 1).read_bytes() == b"first's copy"
    assert os.path.samefile(own, first)  # a link: saving one replaces its name, never the other's


def test_another_keeps_its_own_snapshot_while_it_is_the_newer(tmp_path):
    first, own = tmp_path / "ingest-tokens.snapshot", tmp_path / "ingest-tokens-2.snapshot"
    first.write_bytes(b"older")
    own.write_bytes(b"newer")
    os.utime(first, ns=(1_000_000_000, 1_000_000_000))
    assert snapshot_path(tmp_path, 2).read_bytes() == b"newer"
    os.utime(first, ns=(own.stat().st_mtime_ns + 1, own.stat().st_mtime_ns + 1))
    assert snapshot_path(tmp_path, 2).read_bytes() == b"older"  # the first saved since: it is newer
    assert not (tmp_path / "ingest-tokens-2.snapshot.link").exists()

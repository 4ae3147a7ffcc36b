"""The ping profile sends each sample to the innermost part its stack names."""

from bench.ping_profile import part_of, table, tally


def test_a_sample_goes_to_the_innermost_part_its_stack_names():
    # measured_handler (metrics) wraps the handler: the parsing below it is what ran.
    stack = [
        "main (cli.py:1)",
        "measured_handler (app.py:2)",
        "_record (app.py:3)",
        "parse_metadata (logic.py:4)",
    ]
    assert part_of(stack) == "ping parsing and validation (formats, metadata, instance)"
    assert part_of(stack[:3]) == "ping handler (own code)"
    assert part_of(stack[:2]) == "metrics (counting, histograms)"
    assert part_of(["something (elsewhere.py:1)"]) == "other"


def test_raw_samples_are_counted_per_part_and_shown_per_ping():
    raw = (
        "process 1;Runner.run (runners.py:1);_record (app.py:2) 30\n"
        "process 1;Thread.run (threading.py:1);LogWriter._run (local_writer.py:9) 10\n\n"
    )
    counts = tally(raw)
    assert counts == {"ping handler (own code)": 30, "bus writer thread (SQLite transactions)": 10}
    shown = table({"head": (counts, 1000)})  # 40 samples at 250 Hz over 1,000 pings
    assert "| ping handler (own code) | 120.0 |" in shown
    assert "**160.0**" in shown

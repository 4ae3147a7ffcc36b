"""Keywords in the pure core (docs/semantics.md, "Keywords"): words in a success ping's output or
message say what the run really did. A failure keyword makes it a failure (one problem, a failed
run for a failure rate, an alert naming the keyword), a start keyword a run's start, a success
keyword a recorded success; a success matching none is kept, ignored or failed, as the heartbeat
says. Case is ignored on both sides (casefold); failure keywords win; the match is recorded."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.evaluator.logic.keywords import classify
from shared.events import Alert, CheckinJudged, Ping
from shared.rules import FailureRateRule, KeywordRule
from tests.services.evaluator.harness import H, M, Monitor, S

WORDS = KeywordRule(success=("backup done",), failure=("ERROR", "fatal"), start=("starting",))


def said(hb: Monitor, at_ms: int, output: str | None = None, message: str | None = None, kind="success",
         exit_code: int | None = 0) -> Monitor:  # fmt: skip
    """A ping with a body (``output``) and/or a message, as a job's ``/0`` with a text body sends."""
    hb.offset += 1
    ping = Ping(id=f"{kind}-{at_ms}", monitor_id="m1", project_id="p1", received_ms=at_ms, kind=kind,
                exit_code=exit_code, output=output, message=message)  # fmt: skip
    hb.outputs += hb.ev.apply_ping(ping, hb.offset)
    return hb


def worded(rule: KeywordRule = WORDS, **fields) -> Monitor:
    return Monitor(**{"keywords": rule, **fields})


def ping(output: str | None = None, message: str | None = None) -> Ping:
    return Ping(id="p", monitor_id="m1", project_id="p1", received_ms=1, kind="success", exit_code=0,
                output=output, message=message)  # fmt: skip


def the_judged(hb: Monitor) -> CheckinJudged:
    [judged] = hb.of(CheckinJudged)
    return judged


# failure keywords ------------------------------------------------------------------------------
def test_an_exit_0_run_whose_output_contains_the_failure_keyword_alerts_naming_it():
    hb = said(worded(), 0, output="backup done").ping(1 * H)
    said(hb, 2 * H, output="copying...\nERROR: disk full\nbackup done\n")
    [down] = hb.of(Alert)
    assert down.kind == "down" and down.at_ms == 2 * H
    assert "job's output contains the failure keyword 'ERROR'" in down.reason
    assert (down.last_ping_kind, down.last_ping_exit_code) == ("fail", 0)  # it counted as a failure
    judged = hb.of(CheckinJudged)[-1]
    assert (judged.verdicts, judged.keyword, judged.alerted) == (["keyword_failure"], "ERROR", True)
    assert judged.ping_id == f"success-{2 * H}"  # recorded with the check-in it judged


def test_a_failure_keyword_counts_one_problem_as_a_failure_does():
    hb = said(worded(max_consecutive_misses=2), 0, output="all fine")
    said(hb, 1 * H, output="fatal: no space left")
    assert hb.state.problems == 1 and hb.status == "up" and hb.alerts == []
    assert hb.state.last_problem.startswith("job's output contains the failure keyword 'fatal' at ")
    said(hb, 2 * H, output="fatal again")
    assert hb.alerts == [("down", 2 * H)]


def test_a_failure_keyword_is_a_failed_run_for_the_failure_rate():
    hb = worded(max_consecutive_misses=5, failure_rate=FailureRateRule(percent=50, runs=4))
    for n, output in enumerate(["backup done", "ERROR", "backup done", "ERROR"]):
        said(hb, n * H, output=output)
    assert hb.alerts == [("down", 3 * H)]
    assert hb.of(Alert)[0].reason.startswith("2 of the last 4 runs failed (50%, limit 50%)")


def test_failure_keywords_win_over_success_keywords():
    counted, [finding] = classify(WORDS, ping("Backup done, with 1 error"))
    assert counted is not None and counted.kind == "fail"
    assert (finding.verdict, finding.keyword, finding.alert) == ("keyword_failure", "ERROR", True)


def test_the_first_failure_keyword_configured_is_the_one_recorded():
    _, [finding] = classify(WORDS, ping("fatal: ERROR"))
    assert finding.keyword == "ERROR"  # configured before 'fatal', though later in the text


def test_a_failure_ping_stays_a_failure_whatever_it_says():
    hb = said(worded(max_consecutive_misses=2), 0, output="backup done")
    said(hb, 1 * H, output="backup done", kind="fail", exit_code=3)
    assert hb.state.last_checkin is not None and hb.state.last_checkin.kind == "fail"
    assert hb.state.problems == 1 and [j.ping_id for j in hb.of(CheckinJudged)] == ["success-0"]


# case, and where a keyword is looked for -------------------------------------------------------
def test_case_is_ignored_on_both_sides():
    rule = KeywordRule(failure=("Error",), success=("straße",))
    assert classify(rule, ping("ERROR"))[1][0].verdict == "keyword_failure"
    assert classify(rule, ping("error"))[1][0].verdict == "keyword_failure"
    assert classify(rule, ping("eRrOr"))[1][0].keyword == "Error"  # recorded as configured
    assert classify(rule, ping("STRASSE gesperrt"))[1][0].verdict == "keyword_success"  # casefold, not lower


def test_keywords_match_inside_words_and_nothing_else_is_normalised():
    rule = KeywordRule(failure=("error",))
    assert classify(rule, ping("3 errors"))[1][0].verdict == "keyword_failure"  # a substring
    assert classify(rule, ping("err or"))[1] == []
    assert classify(KeywordRule(failure=("café",)), ping("cafe"))[1] == []  # accents count


def test_the_message_is_looked_at_too_and_the_reason_says_where():
    _, [finding] = classify(WORDS, ping(output="copied 3 files", message="Fatal: quota"))
    assert finding.reason == "job's message contains the failure keyword 'fatal'"
    _, [finding] = classify(WORDS, ping(output="fatal", message="fatal"))
    assert finding.reason == "job's output contains the failure keyword 'fatal'"


def test_an_empty_keyword_matches_nothing():
    assert classify(KeywordRule(failure=("",)), ping("anything")) == (ping("anything"), [])


# success and start keywords --------------------------------------------------------------------
def test_a_success_keyword_keeps_a_success_and_records_the_match():
    hb = said(worded(), 0, output="Backup Done in 3 min")
    judged = the_judged(hb)
    assert (judged.verdicts, judged.keyword, judged.alerted) == (["keyword_success"], "backup done", False)
    assert hb.status == "up" and hb.state.last_checkin is not None and hb.state.last_checkin.kind == "success"


def test_a_start_keyword_starts_a_run():
    hb = said(worded(), 0, output="backup done")
    said(hb, 1 * H, output="Starting backup")
    assert hb.status == "running" and hb.state.extra is not None and len(hb.state.extra.runs) == 1
    said(hb, 1 * H + 5 * M, output="backup done")
    assert hb.status == "up" and hb.measured == [("", 300.0)]
    assert [j.verdicts for j in hb.of(CheckinJudged)] == [
        ["keyword_success"],
        ["keyword_start"],
        ["keyword_success"],
    ]


# unmatched -------------------------------------------------------------------------------------
def test_unmatched_keep_counts_the_success_as_sent():
    hb = said(worded(KeywordRule(failure=("ERROR",))), 0, output="copied 3 files")
    assert hb.status == "up" and hb.of(CheckinJudged) == [] and hb.state.last_ping_ms == 0


def test_unmatched_ignore_records_the_ping_but_it_is_not_a_check_in():
    hb = said(worded(KeywordRule(success=("backup done",), unmatched="ignore")), 0, output="backup done")
    said(hb, 50 * M, output="nothing to do")  # ignored: the window is still the one from 0
    judged = hb.of(CheckinJudged)[-1]
    assert (judged.verdicts, judged.alerted, judged.keyword) == (["ignored"], False, None)
    assert hb.state.last_ping_ms == 0
    hb.ticks(50 * M, 1 * H + 11 * M, 10 * S)
    assert hb.misses == [1 * H + 10 * M]  # it was due as if the ignored ping had not come


def test_unmatched_ignore_ignores_a_ping_without_any_text():
    hb = said(worded(KeywordRule(success=("ok",), unmatched="ignore")), 0)
    assert hb.state.last_ping_ms is None and [j.verdicts for j in hb.of(CheckinJudged)] == [["ignored"]]


def test_unmatched_fail_counts_the_success_as_a_failure():
    hb = said(worded(KeywordRule(success=("backup done",), unmatched="fail")), 0, output="backup done")
    said(hb, 1 * H, output="copied 0 files")
    assert hb.alerts == [("down", 1 * H)]
    assert "no keyword in the job's output or message: counted as a failure" in hb.of(Alert)[0].reason
    judged = hb.of(CheckinJudged)[-1]
    assert (judged.verdicts, judged.alerted) == (["unmatched_failed"], True)


# restarts --------------------------------------------------------------------------------------
def test_a_restart_anywhere_decides_exactly_what_the_uninterrupted_run_did():
    rule = KeywordRule(success=("done",), failure=("error",), start=("begin",), unmatched="fail")
    bodies = ["done", "begin", "done", "Error", "nothing", "done", "begin", "DONE"]

    def scenario(restart_after: int | None) -> list:
        hb = worded(rule, max_consecutive_misses=2)
        for n, body in enumerate(bodies):
            if n == restart_after:
                hb = hb.restarted()
            said(hb, n * 10 * M, output=body)
        return hb.outputs

    expected = scenario(None)
    assert [o.kind for o in expected if isinstance(o, Alert)] == ["down", "up"]
    for restart_after in range(len(bodies)):
        assert scenario(restart_after) == expected, restart_after


# any text --------------------------------------------------------------------------------------
@given(st.text(max_size=300), st.sampled_from(["ERROR", "error", "Fatal", "FATAL"]), st.text(max_size=50))
def test_a_failure_keyword_anywhere_in_any_text_in_any_case_makes_a_failure(before, keyword, after):
    counted, findings = classify(WORDS, ping(before + keyword + after))
    assert counted is not None and counted.kind == "fail"
    assert [f.verdict for f in findings] == ["keyword_failure"]


@given(st.text(max_size=300), st.one_of(st.none(), st.text(max_size=50)))
def test_any_text_is_classified_as_exactly_one_thing(output, message):
    counted, findings = classify(WORDS, ping(output, message))
    assert counted is not None and len(findings) <= 1
    folded = f"{output or ''}\n{message or ''}".casefold()
    if "error" in folded or "fatal" in folded:
        assert counted.kind == "fail"
    elif not findings:
        assert counted.kind == "success" and "backup done" not in folded and "starting" not in folded

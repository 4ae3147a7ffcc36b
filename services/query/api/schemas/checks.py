"""The heartbeat fields of the rules that catch subtler failures (docs/semantics.md, "Fleets",
"Run times", "Runs too early or too often", "Failure rate", "Keywords"): one nested object per
rule, null when the rule is off. Declared here, used by the heartbeat bodies and answer
(:mod:`.heartbeats`), each with its constraints and its refusal (see :mod:`.fields`).

An object given replaces the rule whole (a change does not merge into the one stored); null turns
it off. Each maps to one of ``shared.rules`` (:meth:`rule`), in seconds as ``MonitorConfig`` keeps
them, and back (:func:`check_answers`); the answer carries the same object, periods in seconds.
The figures the evaluator learned (instances reported, the usual run time, the failure rate now)
are answer fields of their own, at the end.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal

from msgspec import Meta, Struct

from services.query.api.schemas.fields import DurationText, Timestamp, at_least, refusal
from services.query.validation import MAX_PERIOD_S, InvalidField, safe_text, seconds
from shared.durations import parse_duration_s
from shared.rules import (
    BASELINE_MIN_RUNS,
    BASELINE_RUNS,
    FAILURE_RATE_DEFAULT_RUNS,
    INSTANCE_EXPIRY_DEFAULT_S,
    MAX_CADENCE_RUNS,
    MAX_INSTANCE_CHARS,
    MAX_INSTANCES,
    MAX_RATE_RUNS,
    CadenceRule,
    FailureRateRule,
    FleetRule,
    KeywordRule,
    RunTimeRule,
)

MAX_DECLARED_INSTANCES = 1000
"""Instances a body may declare: 1,000 names of up to 64 characters still fit the API's 64 KiB body
(the fleet itself learns up to ``shared.rules.MAX_INSTANCES`` from pings)."""
MIN_EXPIRY_S = 60
MAX_KEYWORDS, MAX_KEYWORD_CHARS = 20, 100
MAX_RUNS_PER_INTERVAL = MAX_CADENCE_RUNS
MIN_RATE_WINDOW_S = 60
MISSING_SHOWN = 20
"""Missing instances an answer names (``instances_summary.missing``); the instances route lists all."""

_PERIOD_REFUSAL = 'must be a number of seconds or a duration such as "30m"'
_DAYS = MAX_PERIOD_S // 86400


def _period(minimum_s: int, description: str) -> Meta:
    """A period of a rule: whole seconds (``minimum_s`` to 365 days, see :func:`.fields.at_least`) or a
    duration; made seconds by its Struct (:func:`_in_seconds`)."""
    return Meta(
        description=f'Seconds, or a duration such as ``"30m"``, ``"1h30m"``; {minimum_s} s to {_DAYS} days. '
        + description,
        extra=refusal(f"{_PERIOD_REFUSAL}, from {minimum_s} s to {_DAYS} days"),
    )


def _whole(low: int, high: int, description: str) -> Meta:
    return Meta(
        ge=low,
        le=high,
        description=description,
        extra=refusal(f"must be a whole number from {low} to {high}"),
    )


def _in_seconds(rule: str, sub: str, value: Any, minimum: int) -> int | None:
    """A rule's period in whole seconds; a refusal names the rule as the field, and its part."""
    if value is None:
        return None
    try:
        return seconds(sub, value, minimum)
    except InvalidField as exc:
        raise InvalidField(rule, str(exc)) from None


# fleets --------------------------------------------------------------------------------------
InstanceName = Annotated[str, Meta(
    min_length=1, max_length=MAX_INSTANCE_CHARS, pattern=r"^[^\u0000-\u001f\u007f-\u009f]+$",
    description=f"1-{MAX_INSTANCE_CHARS} printable characters, no space at either end (a host, pod or worker "
                "name), as pings name it.",
)]  # fmt: skip


def instance_name(field: str, name: str) -> str:
    """An instance's name as pings spell it (``services.ingest.logic.parse_instance``): 1-64
    printable characters, no space at either end; kept exactly as given."""
    if not 1 <= len(name) <= MAX_INSTANCE_CHARS or not name.isprintable() or name != name.strip():
        raise InvalidField(
            field,
            f"an instance name is 1-{MAX_INSTANCE_CHARS} printable characters, no space at either end: {name[:70]!r}",
        )
    return name


MinInstances = Annotated[
    int, _whole(1, MAX_INSTANCES, "At least this many instances must report in each window.")
]
MinPercent = Annotated[
    int, _whole(1, 100, "Or at least this share (1-100) of the members; with both, the larger count.")
]
DeclaredInstances = Annotated[list[InstanceName], Meta(
    max_length=MAX_DECLARED_INSTANCES,
    description=f"Members declared in advance (at most {MAX_DECLARED_INSTANCES}; duplicates dropped): expected "
                "from the first window on, and they never expire.",
    extra=refusal(f"a list of at most {MAX_DECLARED_INSTANCES} instance names of 1-{MAX_INSTANCE_CHARS} printable "
                  "characters"),
)]  # fmt: skip
Expiry = Annotated[
    Annotated[int, at_least(MIN_EXPIRY_S)] | DurationText,
    _period(MIN_EXPIRY_S, "An instance silent this long leaves the fleet without paging. Null: "
            f"{INSTANCE_EXPIRY_DEFAULT_S // 86400} days."),
]  # fmt: skip


class Fleet(Struct, kw_only=True, forbid_unknown_fields=True):
    """Run by many instances (docs/semantics.md, "Fleets"): at each check, at least so many of them must
    have reported; fewer is a problem whose alert names the missing. Members are learned from pings
    naming their instance (``?instance=`` or ``X-Pingura-Instance``), and may be declared."""

    min_instances: MinInstances | None = None
    min_percent: MinPercent | None = None
    instances: DeclaredInstances = []
    expiry: Expiry | None = None
    json_schema_extra: ClassVar[dict[str, Any]] = {
        "anyOf": [{"required": ["min_instances"], "properties": {"min_instances": {"type": "integer"}}},
                  {"required": ["min_percent"], "properties": {"min_percent": {"type": "integer"}}}],
    }  # fmt: skip

    def __post_init__(self) -> None:
        if self.min_instances is None and self.min_percent is None:
            raise InvalidField("fleet", "give min_instances or min_percent (or both)")
        self.instances = list(dict.fromkeys(instance_name("fleet", name) for name in self.instances))
        self.expiry = _in_seconds("fleet", "expiry", self.expiry, MIN_EXPIRY_S)

    def rule(self) -> FleetRule:
        return FleetRule(min_instances=self.min_instances, min_percent=self.min_percent,
                         declared=tuple(self.instances), expiry_s=self.expiry)  # type: ignore[arg-type]  # fmt: skip

    @classmethod
    def of(cls, rule: FleetRule) -> Fleet:
        return cls(min_instances=rule.min_instances, min_percent=rule.min_percent, instances=list(rule.declared),
                   expiry=rule.expiry_s)  # fmt: skip


# run times -----------------------------------------------------------------------------------
_RUN_TIME_REFUSAL = (
    f'must be a number of seconds (fractions allowed) or a duration such as "30m", up to {_DAYS} days'
)
RunSeconds = Annotated[
    Annotated[float, Meta(extra_json_schema={"exclusiveMinimum": 0, "maximum": MAX_PERIOD_S})] | DurationText,
    Meta(extra=refusal(_RUN_TIME_REFUSAL)),
]


def _run_seconds(sub: str, value: Any) -> float | None:
    """A run-time limit in seconds (to the millisecond): more than 0, at most 365 days."""
    if value is None:
        return None
    amount: float
    if isinstance(value, str):
        try:
            amount = parse_duration_s(value)
        except ValueError as exc:
            raise InvalidField("run_time", f"{sub}: {exc}") from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        amount = value if math.isfinite(value) else -1.0
    else:
        raise InvalidField("run_time", f"{sub}: {_RUN_TIME_REFUSAL}")
    if not 0 < amount <= MAX_PERIOD_S:
        raise InvalidField("run_time", f"{sub}: {_RUN_TIME_REFUSAL}")
    return max(0.001, round(float(amount), 3))


RunMin = Annotated[RunSeconds, Meta(description='A run shorter than this is too fast. Seconds (fractions allowed) or '
                                                'a duration such as ``"30s"``. Null: no lower limit.')]  # fmt: skip
RunMax = Annotated[RunSeconds, Meta(description="A run longer than this is too slow (more than ``min``). Null: no "
                                                "upper limit.")]  # fmt: skip
Limits = Annotated[Literal["alert", "mark"], Meta(
    description='What a run outside ``min``/``max`` does: ``"alert"`` (the default: a problem, as a failure) or '
                '``"mark"`` (marked in the history only).',
    extra=refusal('must be "alert" or "mark"'),
)]  # fmt: skip
Baseline = Annotated[Literal["off", "mark", "alert"], Meta(
    description=f"What a run far from its usual range does (learned from the last {BASELINE_RUNS} runs, judged "
                f"once {BASELINE_MIN_RUNS} were measured): ``off`` (the default), ``mark`` or ``alert``.",
    extra=refusal('must be "off", "mark" or "alert"'),
)]  # fmt: skip


class RunTime(Struct, kw_only=True, forbid_unknown_fields=True):
    """How long a run should take (docs/semantics.md, "Run times"): fixed limits, and a usual range learned
    from its own last runs (measured from ``/start`` to its end, or the ``duration`` a ping reports)."""

    min: RunMin | None = None
    max: RunMax | None = None
    limits: Limits = "alert"
    baseline: Baseline = "off"

    def __post_init__(self) -> None:
        self.min = _run_seconds("min", self.min)
        self.max = _run_seconds("max", self.max)
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise InvalidField("run_time", "min must be less than max")
        if self.min is None and self.max is None and self.baseline == "off":
            raise InvalidField(
                "run_time", 'give min, max, or a baseline ("mark" or "alert"); null turns it off'
            )

    def rule(self) -> RunTimeRule:
        return RunTimeRule(min_s=self.min, max_s=self.max, limits=self.limits, baseline=self.baseline)  # type: ignore[arg-type]

    @classmethod
    def of(cls, rule: RunTimeRule) -> RunTime:
        return cls(min=rule.min_s, max=rule.max_s, limits=rule.limits, baseline=rule.baseline)


# runs too early or too often -----------------------------------------------------------------
EarlyTolerance = Annotated[
    Annotated[int, at_least(1)] | DurationText,
    _period(1, "A run arriving more than this before it was due is too early. Null: not judged."),
]
MaxRunsPerInterval = Annotated[int, _whole(1, MAX_RUNS_PER_INTERVAL, "More runs than this within one interval (or "
                                           "between two runs of the schedule) is too often. Null: not judged.")]  # fmt: skip


class Cadence(Struct, kw_only=True, forbid_unknown_fields=True):
    """Runs that come too early or too often (docs/semantics.md, "Runs too early or too often"): each is a
    problem with its own reason."""

    early_tolerance: EarlyTolerance | None = None
    max_runs_per_interval: MaxRunsPerInterval | None = None
    json_schema_extra: ClassVar[dict[str, Any]] = {
        "anyOf": [{"required": ["early_tolerance"],
                   "properties": {"early_tolerance": {"type": ["integer", "string"]}}},
                  {"required": ["max_runs_per_interval"],
                   "properties": {"max_runs_per_interval": {"type": "integer"}}}],
    }  # fmt: skip

    def __post_init__(self) -> None:
        self.early_tolerance = _in_seconds("cadence", "early_tolerance", self.early_tolerance, 1)
        if self.early_tolerance is None and self.max_runs_per_interval is None:
            raise InvalidField("cadence", "give early_tolerance or max_runs_per_interval (or both)")

    def rule(self) -> CadenceRule:
        return CadenceRule(early_s=self.early_tolerance, max_runs=self.max_runs_per_interval)  # type: ignore[arg-type]

    @classmethod
    def of(cls, rule: CadenceRule) -> Cadence:
        return cls(early_tolerance=rule.early_s, max_runs_per_interval=rule.max_runs)


# failure rate --------------------------------------------------------------------------------
Percent = Annotated[
    int, _whole(1, 100, "Required: at or above this share (1-100) of failed runs, it is down.")
]
Runs = Annotated[int, _whole(2, MAX_RATE_RUNS, f"The last this many runs (2-{MAX_RATE_RUNS}) are counted; nothing is "
                             "judged before as many were seen (with a window: half as many within it). "
                             f"Default {FAILURE_RATE_DEFAULT_RUNS}.")]  # fmt: skip
RateWindow = Annotated[
    Annotated[int, at_least(MIN_RATE_WINDOW_S)] | DurationText,
    _period(MIN_RATE_WINDOW_S, "Only runs within this long before the newest count. Null: no limit."),
]
RecoverPercent = Annotated[
    int, _whole(0, 99, "Up again under this share (0 to ``percent`` - 1). Null: half of ``percent``.")
]


class FailureRate(Struct, kw_only=True, forbid_unknown_fields=True):
    """Down when at least ``percent`` of the last ``runs`` runs failed, even if never enough in a row; up again
    when the share falls under ``recover_percent`` (docs/semantics.md, "Failure rate")."""

    percent: Percent
    runs: Runs = FAILURE_RATE_DEFAULT_RUNS
    window: RateWindow | None = None
    recover_percent: RecoverPercent | None = None

    def __post_init__(self) -> None:
        self.window = _in_seconds("failure_rate", "window", self.window, MIN_RATE_WINDOW_S)
        if self.recover_percent is not None and self.recover_percent >= self.percent:
            raise InvalidField("failure_rate", "recover_percent must be less than percent")

    def rule(self) -> FailureRateRule:
        return FailureRateRule(percent=self.percent, runs=self.runs, window_s=self.window,  # type: ignore[arg-type]
                               recover_percent=self.recover_percent)  # fmt: skip

    @classmethod
    def of(cls, rule: FailureRateRule) -> FailureRate:
        return cls(
            percent=rule.percent, runs=rule.runs, window=rule.window_s, recover_percent=rule.recover_percent
        )


# keywords ------------------------------------------------------------------------------------
Keyword = Annotated[str, Meta(min_length=1, max_length=MAX_KEYWORD_CHARS)]


def _keywords(description: str) -> Meta:
    return Meta(
        max_length=MAX_KEYWORDS, description=f"{description} At most {MAX_KEYWORDS}, each 1-{MAX_KEYWORD_CHARS} "
                                             "characters (not only spaces); duplicates dropped.",
        extra=refusal(f"a list of at most {MAX_KEYWORDS} keywords of 1-{MAX_KEYWORD_CHARS} characters"),
    )  # fmt: skip


SuccessWords = Annotated[
    list[Keyword], _keywords("The run succeeded if its text holds one (and no failure word).")
]
FailureWords = Annotated[
    list[Keyword], _keywords("The run failed if its text holds one, whatever its exit code.")
]
StartWords = Annotated[list[Keyword], _keywords("The ping is a run's start if its text holds one.")]
Unmatched = Annotated[Literal["keep", "ignore", "fail"], Meta(
    description="A success ping whose text holds no keyword: ``keep`` it a success (the default), ``ignore`` it "
                "(kept in the history, judged as nothing), or count it a ``fail``.",
    extra=refusal('must be "keep", "ignore" or "fail"'),
)]  # fmt: skip


class Keywords(Struct, kw_only=True, forbid_unknown_fields=True):
    """Words in a success ping's output or message that say what the run really did (docs/semantics.md,
    "Keywords"): matched anywhere in the text, whatever its case; failure words first, then success, then
    start."""

    success: SuccessWords = []
    failure: FailureWords = []
    start: StartWords = []
    unmatched: Unmatched = "keep"
    json_schema_extra: ClassVar[dict[str, Any]] = {
        "anyOf": [{"required": [name], "properties": {name: {"minItems": 1}}}
                  for name in ("success", "failure", "start")],
    }  # fmt: skip

    def __post_init__(self) -> None:
        for name in ("success", "failure", "start"):
            words = getattr(self, name)
            for word in words:
                if not word.strip():
                    raise InvalidField("keywords", f"{name}: a keyword must not be only spaces")
                safe_text("keywords", word)
            setattr(self, name, list(dict.fromkeys(words)))
        if not (self.success or self.failure or self.start):
            raise InvalidField(
                "keywords", "give at least one keyword (success, failure or start); null turns it off"
            )

    def rule(self) -> KeywordRule:
        return KeywordRule(success=tuple(self.success), failure=tuple(self.failure), start=tuple(self.start),
                           unmatched=self.unmatched)  # fmt: skip

    @classmethod
    def of(cls, rule: KeywordRule) -> Keywords:
        return cls(success=list(rule.success), failure=list(rule.failure), start=list(rule.start),
                   unmatched=rule.unmatched)  # fmt: skip


def _field(kind: type, what: str, example: str) -> Any:
    return Annotated[kind, Meta(
        description=f"{what} Null (the default): off. An object given replaces the rule whole.",
        extra=refusal(f"must be an object such as {example}, or null (off)"),
    )]  # fmt: skip


FleetField = _field(
    Fleet, "Run by many instances: at least so many must report each window.", '{"min_instances": 3}'
)
RunTimeField = _field(RunTime, "Fixed run-time limits, and a learned usual range.", '{"min": "5m"}')
CadenceField = _field(Cadence, "Runs too early or too often.", '{"max_runs_per_interval": 1}')
FailureRateField = _field(FailureRate, "Down when too many of the last runs failed.", '{"percent": 30}')
KeywordsField = _field(
    Keywords, "Success, failure and start words in a success ping's text.", '{"failure": ["ERROR"]}'
)

CHECKS: dict[str, type] = {
    "fleet": Fleet, "run_time": RunTime, "cadence": Cadence, "failure_rate": FailureRate, "keywords": Keywords,
}  # fmt: skip
"""Body field -> its type; the ``MonitorConfig`` field has the same name."""


def check_fields(given: dict[str, Any], creating: bool) -> dict[str, Any]:
    """The ``MonitorConfig`` fields the rule fields of a body set (a create: all, off unless given)."""
    return {field: (value.rule() if value is not None else None)
            for field in CHECKS if field in given or creating
            for value in [given.get(field)]}  # fmt: skip


def check_answers(config: Any) -> dict[str, Any]:
    """A ``MonitorConfig``'s rules as the heartbeat answer shows them."""
    return {field: (kind.of(rule) if (rule := getattr(config, field)) is not None else None)  # type: ignore[attr-defined]
            for field, kind in CHECKS.items()}  # fmt: skip


# what the evaluator learned (answers only) ---------------------------------------------------
class InstancesSummary(Struct, kw_only=True):
    """A fleet's figures as of the last window the evaluator judged."""

    reported: Annotated[int, Meta(description="Members that reported in that window.")]
    members: Annotated[int, Meta(description="Instances in the fleet then.")]
    required: Annotated[int, Meta(description="How many had to report (``min_instances``, or ``min_percent`` of "
                                              "the members).")]  # fmt: skip
    missing: Annotated[list[str], Meta(description=f"The members that did not report, sorted (the first "
                                                   f"{MISSING_SHOWN}; the instances route lists all).")]  # fmt: skip
    judged_at: Annotated[Timestamp, Meta(description="The deadline of that window.")]


class UsualRunTime(Struct, kw_only=True):
    """The usual run time learned from its last measured runs: a run outside ``low_s``-``high_s`` is far from usual."""

    median_s: float
    low_s: float
    high_s: float
    runs: Annotated[int, Meta(description=f"Runs it was learned from (at most {BASELINE_RUNS}).")]


class FailureRateNow(Struct, kw_only=True):
    """The failure rate over the runs counted now (the last ``runs``, within ``window``)."""

    failed: int
    runs: int
    percent: Annotated[int, Meta(description="``failed`` of ``runs``, rounded down.")]

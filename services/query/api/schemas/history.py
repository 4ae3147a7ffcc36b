"""History bodies: check-ins, uptime, timings, status changes, deliveries and dead letters
as the API answers them, and the query strings of their pages and ranges.

Every query parameter is checked before ClickHouse is asked anything: times within
1970..9999 and ``from`` not after ``to``, so a bad one is a 400, never a wrong answer.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, NamedTuple, get_args

from msgspec import Meta, Struct

from services.query.api.schemas.fields import DURATION_PATTERN, Timestamp, refusal
from services.query.store import MAX_PAGE_ROWS, decode_cursor
from services.query.validation import MAX_TIME_MS, InvalidField, parse_range_ms, parse_time_ms
from shared.durations import parse_duration_s
from shared.events import MonitorStatus
from shared.rules import MAX_INSTANCE_CHARS, Verdict

DEFAULT_PAGE_ROWS = 50
CheckinKind = Literal["success", "fail", "missed", "start", "log"]
"""What ``kind`` may ask for: the ping kinds (``start``: a run began; ``log``: output only)
and ``missed`` for a window without one."""
CHECKIN_KINDS: tuple[str, ...] = get_args(CheckinKind)
ExportFormat = Literal["csv", "json", "jsonl"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = get_args(ExportFormat)
"""How each is served: :data:`EXPORT_FILES`."""
_KIND = f"(?:{'|'.join(CHECKIN_KINDS)})"
VERDICTS: tuple[str, ...] = get_args(Verdict)
_VERDICT = f"(?:{'|'.join(VERDICTS)})"
InstanceName = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_INSTANCE_CHARS,
        examples=["web-7"],
        description=f"An instance (host, pod, worker) as its pings named it, 1-{MAX_INSTANCE_CHARS} characters.",
        extra=refusal(f"must be 1-{MAX_INSTANCE_CHARS} characters"),
    ),
]
MAX_TIMING_POINTS = 5000
"""For a ``bucket`` the client picks."""

TIME_PATTERN = (
    r"^(?:[0-9]{1,15}"  # epoch milliseconds
    r"|(?:19[7-9][0-9]|[2-9][0-9]{3})-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"(?:T(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?)?)$"
)
"""The common spellings :func:`services.query.validation.parse_time_ms` reads (it reads every
ISO-8601 form ``datetime.fromisoformat`` does, and checks the range, 1970 to 9999)."""
Time = Annotated[str, Meta(
    extra_json_schema={"pattern": TIME_PATTERN},
    examples=["2025-01-01T00:00:00Z", "1735689600000", str(MAX_TIME_MS)],
    description="ISO-8601 (UTC unless it says otherwise) or epoch milliseconds, from 1970-01-01 to 9999-12-31.",
)]  # fmt: skip
Cursor = Annotated[str, Meta(description="The ``next`` of the previous page.")]
Limit = Annotated[
    int,
    Meta(
        ge=1,
        le=MAX_PAGE_ROWS,
        description=f"Rows per page, 1-{MAX_PAGE_ROWS} (ASCII digits).",
        extra=refusal(f"must be a whole number from 1 to {MAX_PAGE_ROWS}"),
    ),
]


def check_cursor(before: str | None) -> None:
    """Checked here, so that no ValueError from the store reads as bad input."""
    if before is not None:
        try:
            decode_cursor(before)
        except ValueError:
            raise InvalidField("before", 'not a cursor this API issued (use the "next" of a page)') from None


class PageQuery(Struct, kw_only=True):
    """A page of rows, newest first."""

    limit: Limit = DEFAULT_PAGE_ROWS
    before: Cursor | None = None
    empty_is_absent: ClassVar[frozenset[str]] = frozenset({"before"})

    def __post_init__(self) -> None:
        check_cursor(self.before)


class RangeQuery(Struct, kw_only=True, rename={"from_": "from"}):
    """A range of time, ``from`` and ``to``; the route picks the defaults (:meth:`span_ms`)."""

    from_: Annotated[Time, Meta(description="Start of the range (inclusive).")] | None = None
    to: Annotated[Time, Meta(description="End of the range (exclusive); default now.")] | None = None
    empty_is_absent: ClassVar[frozenset[str]] = frozenset({"from", "to"})

    def __post_init__(self) -> None:
        self.given_ms()

    def given_ms(self) -> tuple[int | None, int | None]:
        """``from`` and ``to`` in ms, None where not given; ``from`` not after ``to``."""
        from_ms = None if self.from_ is None else parse_time_ms("from", self.from_, 0)
        to_ms = None if self.to is None else parse_time_ms("to", self.to, 0)
        if from_ms is not None and to_ms is not None and from_ms > to_ms:
            raise InvalidField("from", "must not be after to")
        return from_ms, to_ms

    def span_ms(self, now_ms: int, default_span_ms: int | None) -> tuple[int, int]:
        """``to`` defaults to now, ``from`` to ``default_span_ms`` before ``to`` (None: the epoch)."""
        return parse_range_ms({"from": self.from_ or "", "to": self.to or ""}, now_ms, default_span_ms)


class CheckinQuery(RangeQuery, kw_only=True, rename={"from_": "from"}):
    """A page of check-ins; ``kind`` and ``from``/``to`` (only when given: no clock skew hides
    a ping) narrow it. Pass the same filters with ``before`` for the next page."""

    limit: Limit = DEFAULT_PAGE_ROWS
    before: Cursor | None = None
    kind: (
        Annotated[
            str,
            Meta(
                pattern=f"^{_KIND}(?:,{_KIND})*$",
                examples=["fail", "fail,missed"],
                description=f"Only check-ins of these kinds, comma-separated: {', '.join(CHECKIN_KINDS)}.",
                extra=refusal(f"each must be one of {', '.join(CHECKIN_KINDS)} (comma-separated)"),
            ),
        ]
        | None
    ) = None
    instance: Annotated[InstanceName, Meta(description="Only the check-ins this instance sent.")] | None = (
        None
    )
    verdict: (
        Annotated[
            str,
            Meta(
                pattern=f"^{_VERDICT}(?:,{_VERDICT})*$",
                examples=["too_fast", "too_fast,too_slow,under_min,over_max"],
                description="Only check-ins a rule found one of these in, comma-separated: "
                f"{', '.join(VERDICTS)}.",
                extra=refusal(f"each must be one of {', '.join(VERDICTS)} (comma-separated)"),
            ),
        ]
        | None
    ) = None
    empty_is_absent: ClassVar[frozenset[str]] = frozenset({"before", "from", "to", "kind", "verdict"})

    def __post_init__(self) -> None:
        check_cursor(self.before)
        super().__post_init__()

    def kinds(self) -> list[str]:
        return list(dict.fromkeys(self.kind.split(","))) if self.kind else []

    def verdicts(self) -> list[str]:
        return list(dict.fromkeys(self.verdict.split(","))) if self.verdict else []


class TimingsQuery(RangeQuery, kw_only=True, rename={"from_": "from"}):
    bucket: (
        Annotated[
            str,
            Meta(
                extra_json_schema={"pattern": DURATION_PATTERN},
                examples=["1m", "1h"],
                description=f"Bucket length, a duration of at least 1m; at most {MAX_TIMING_POINTS} buckets in the range. "
                "Default: the roundest one giving about 500.",
            ),
        ]
        | None
    ) = None
    empty_is_absent: ClassVar[frozenset[str]] = frozenset({"from", "to", "bucket"})

    def __post_init__(self) -> None:
        super().__post_init__()
        self.bucket_s()

    def bucket_s(self) -> int | None:
        if self.bucket is None:
            return None
        try:
            seconds = int(parse_duration_s(self.bucket))
        except ValueError as exc:
            raise InvalidField("bucket", str(exc)) from None
        if seconds < 60:
            raise InvalidField("bucket", "must be at least 1m")
        return seconds


class ExportQuery(RangeQuery, kw_only=True, rename={"from_": "from"}):
    format: Annotated[
        ExportFormat,
        Meta(
            description="csv, a JSON array, or JSON lines (one object a line). CSV (RFC 4180, CRLF): booleans true/false, "
            "null empty, and a text cell starting with = + - @ tab or CR gets a leading ' so that no "
            "spreadsheet runs it as a formula; JSON is exact.",
            extra=refusal(f"must be {', '.join(EXPORT_FORMATS)}"),
        ),
    ] = "csv"


# answers -------------------------------------------------------------------------------------
Seconds = Annotated[
    float | None,
    Meta(description="Seconds, over the pings with a duration: the measured one, else the one reported."),
]
Percent = Annotated[
    Annotated[float, Meta(ge=0, le=100)] | None,
    Meta(description="Percent of the observed time not spent down; null when nothing was observed."),
]
Count = Annotated[int, Meta(ge=0)]


class ExportRow(Struct, kw_only=True):
    """A check-in as exported (and, with ``received_at_ms``, as a page shows it)."""

    id: str
    received_at: Timestamp
    kind: CheckinKind
    exit_code: Annotated[int, Meta(ge=0, le=255)] | None
    status: str | None
    message: str | None
    duration: Annotated[float | None, Meta(description="Seconds.")]
    duration_raw: Annotated[str | None, Meta(description="The duration as the ping spelled it.")]
    source_ip: str
    user_agent: str
    method: str
    measured_duration: Annotated[
        float | None,
        Meta(
            description="Seconds from the run's ``start`` to this ping that ended it, as the evaluator measured it "
            "(null: no start, or the job sent a duration)."
        ),
    ]
    rid: Annotated[
        str | None,
        Meta(
            description="The run id the ping carried (``?rid=``, a UUID; or Cronitor's "
            "``series``), tying a start to its end."
        ),
    ]
    output: Annotated[
        str | None,
        Meta(
            description="The job's output: the ping's text body, its first "
            "``PINGURA_MAX_OUTPUT_BYTES`` (100 KiB)."
        ),
    ]
    output_truncated: Annotated[
        bool,
        Meta(
            description="The body was longer; the rest was dropped. In a page, also "
            "true when only the first 2,000 characters are shown: the "
            "check-in itself has all."
        ),
    ]
    instance: Annotated[
        str | None,
        Meta(
            description="The instance (host, pod, worker) that sent it: ``?instance=``, the "
            "``X-Pingura-Instance`` header or Cronitor's ``host``; null when it named none."
        ),
    ]
    verdicts: Annotated[
        list[Verdict],
        Meta(
            description="What the heartbeat's rules found in it: outside the usual run time (too_fast, too_slow), "
            "the fixed limits (under_min, over_max), too_early, too_often, or what its keywords made of it "
            "(keyword_failure, keyword_start, keyword_success, ignored, unmatched_failed). Empty: nothing."
        ),
    ]
    verdict_reason: Annotated[
        str | None,
        Meta(description='What was found, for people, e.g. "run took 3 s; usually 20 s to 1 min 20 s".'),
    ]
    alerted: Annotated[
        bool,
        Meta(description="A verdict counted as a problem (a failed run); false when they only mark the run."),
    ]
    keyword: Annotated[str | None, Meta(description="The keyword that matched, as configured.")]


class Checkin(ExportRow, kw_only=True):
    received_at_ms: int | None = None


EXPORT_COLUMNS: list[str] = list(ExportRow.__struct_fields__)


class ExportFile(NamedTuple):
    """How the export serves one format."""

    content_type: str
    extension: str
    """Of the file name the download suggests."""
    body: Any
    """The body's type, for the OpenAPI document."""

    @property
    def media_type(self) -> str:
        """The content type without its parameters (``charset``), as the document keys it."""
        return self.content_type.partition(";")[0]


EXPORT_FILES: dict[ExportFormat, ExportFile] = {
    "csv": ExportFile("text/csv; charset=utf-8", "csv", str),
    "json": ExportFile("application/json", "json", list[ExportRow]),
    "jsonl": ExportFile("application/x-ndjson", "jsonl", str),
}
"""One entry per :data:`ExportFormat`."""


class CheckinPage(Struct):
    checkins: list[Checkin]
    next: str | None


class UptimeRange(Struct, rename={"from_": "from"}):
    """Present when ``from`` or ``to`` was given."""

    from_: Timestamp
    to: Timestamp
    uptime: Percent
    outages: Annotated[Count, Meta(description="Stretches down within the range (one begun before counts).")]
    downtime_s: Annotated[float, Meta(ge=0)]
    observed_s: Annotated[
        float, Meta(ge=0, description="Time watched: not new nor paused, in the heartbeat's life.")
    ]


class Uptime(Struct):
    heartbeat_id: str
    uptime: Annotated[dict[str, Percent], Meta(description="By window: 24h, 7d, 30d, 90d.")]
    range: UptimeRange | None = None


class TimingPoint(Struct):
    bucket: Timestamp
    bucket_ms: int
    count: Annotated[Count, Meta(description="Pings (misses aside).")]
    avg_duration_s: Seconds
    p50_duration_s: Seconds
    p95_duration_s: Seconds
    max_duration_s: Seconds
    fails: Count
    misses: Count
    outliers: Annotated[Count, Meta(description="Runs whose duration a rule judged (see ``outliers``).")]


class OutlierRun(Struct):
    """A run whose duration a run-time rule judged: outside the usual range it learned (too_fast,
    too_slow) or the fixed limits (under_min, over_max), alerting or only marked."""

    ping_id: Annotated[str, Meta(description="The check-in that ended the run.")]
    at: Timestamp
    at_ms: int
    outlier: Literal[True]
    verdicts: list[Verdict]
    alerted: Annotated[bool, Meta(description="Counted as a problem (else only marked).")]
    reason: str
    duration_s: Annotated[float | None, Meta(description="The run's duration, as judged.")]
    usual_low_s: Annotated[
        float | None, Meta(description="The usual range it was judged against, when the baseline judged it.")
    ]
    usual_high_s: float | None
    instance: str | None


class Timings(Struct):
    heartbeat_id: str
    bucket_s: Annotated[int, Meta(ge=60)]
    points: list[TimingPoint]
    outliers: Annotated[
        list[OutlierRun],
        Meta(
            description="The runs in the range whose duration a rule judged, oldest first (the newest 1,000)."
        ),
    ]


class StatusChange(Struct):
    id: str
    at: Timestamp
    status: MonitorStatus
    previous: MonitorStatus
    reason: str


class StatusChangePage(Struct):
    changes: list[StatusChange]
    next: str | None

"""Delivery answers (every try to send an alert to a channel, the dead letters, how a try
made by a request went) and the one error body every failure has."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from services.query.api.schemas.fields import Timestamp
from shared.events import AlertKind, DeliveryOutcome

Count = Annotated[int, Meta(ge=0)]
StatusCode = Annotated[int | None, Meta(description="The receiver's answer (HTTP status or SMTP code).")]


class Error(Struct, omit_defaults=True):
    """Every failure of the API, whatever its status."""

    error: Annotated[str, Meta(min_length=1, description="One line saying what is wrong.")]
    field: (
        Annotated[
            str,
            Meta(
                description="The field at fault (``name``, ``config.url``, ``limit``, ``body``), when one is."
            ),
        ]
        | UnsetType
    ) = UNSET


class DeliveryAttempt(Struct):
    """One try to send one alert to one channel."""

    id: str
    alert_id: str
    kind: Annotated[
        AlertKind | Literal[""],
        Meta(description="The alert's kind (``test``: a test notification); empty in rows older than kinds."),
    ]
    heartbeat_id: Annotated[str | None, Meta(description="Null for a test notification.")]
    channel_id: str
    attempt: Annotated[Count, Meta(description="1 for the first try of the pair.")]
    outcome: DeliveryOutcome
    ok: bool
    attempts: Count
    status_code: StatusCode
    error: Annotated[str, Meta(description="Why it failed; empty when delivered.")]
    latency_ms: Count
    at: Timestamp
    next_attempt_at: Timestamp | None
    digest: Annotated[Count, Meta(description="How many alerts the message carried; 0: this one alone.")]
    resend: Annotated[bool, Meta(description="Sent again by a person.")]


class DeliveryAttemptPage(Struct):
    deliveries: list[DeliveryAttempt]
    next: str | None


class FailedDelivery(Struct):
    """A dead letter: an alert whose delivery to a channel failed for good."""

    id: Annotated[str, Meta(description="``{alert_id}|{channel_id}``: what a resend names.")]
    alert_id: str
    kind: AlertKind
    heartbeat_id: str
    heartbeat_name: str
    channel_id: str
    attempts: Count
    status_code: StatusCode
    error: str
    failed_at: Timestamp


class FailedDeliveryPage(Struct):
    failed: list[FailedDelivery]
    next: str | None


class DeliveryResult(Struct, omit_defaults=True):
    """How a try made by this request went."""

    ok: bool
    latency_ms: Count
    status_code: Annotated[int, Meta(description="Present when the receiver answered.")] | UnsetType = UNSET
    error: Annotated[str, Meta(description="Present when it failed.")] | UnsetType = UNSET
    attempt: Annotated[int, Meta(ge=1, description="The try's number (resends only).")] | UnsetType = UNSET

"""Events as the bus carries them, with deterministic ids like the real producers'."""

from shared.events import Delivery, Missed, Ping, StatusChanged


def a_ping(project_id: str, monitor_id: str, received_ms: int, n: int = 0, **fields) -> Ping:
    return Ping(
        id=f"p{received_ms:015d}{n:04d}",
        project_id=project_id,
        monitor_id=monitor_id,
        received_ms=received_ms,
        kind=fields.pop("kind", "success"),
        **fields,
    )


def a_miss(project_id: str, monitor_id: str, deadline_ms: int) -> Missed:
    return Missed(
        id=f"{monitor_id}:miss:{deadline_ms}",
        project_id=project_id,
        monitor_id=monitor_id,
        deadline_ms=deadline_ms,
        expected_ms=deadline_ms - 60_000,
        consecutive=1,
    )


def a_status_change(
    project_id: str, monitor_id: str, at_ms: int, status: str, previous: str, reason: str = ""
) -> StatusChanged:
    return StatusChanged(
        id=f"{monitor_id}:{at_ms}:{status}",
        project_id=project_id,
        monitor_id=monitor_id,
        status=status,
        previous=previous,
        at_ms=at_ms,
        reason=reason,
    )


def a_delivery(
    project_id: str,
    monitor_id: str,
    at_ms: int,
    incident: int = 1,
    kind: str = "down",
    channel_id: str = "ch_1",
    **fields,
) -> Delivery:
    return Delivery(
        alert_id=f"{monitor_id}:{incident}:{kind}",
        channel_id=channel_id,
        monitor_id=monitor_id,
        project_id=project_id,
        ok=fields.pop("ok", True),
        attempts=fields.pop("attempts", 1),
        at_ms=at_ms,
        **fields,
    )

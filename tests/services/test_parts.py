"""Parts of a service start in order and close in reverse, and only what started is closed."""

from __future__ import annotations

import pytest

from services.parts import Parts


class Part:
    def __init__(self, name: str, events: list[str], fails: bool = False):
        self.name, self.events, self.fails = name, events, fails

    async def start(self) -> None:
        if self.fails:
            raise RuntimeError(f"{self.name} did not start")
        self.events.append(f"start {self.name}")

    async def close(self) -> None:
        self.events.append(f"close {self.name}")


async def test_it_closes_what_started_in_reverse_with_close_callbacks_in_their_place():
    events: list[str] = []
    parts = Parts()

    async def release() -> None:
        events.append("release client")

    await parts.start(Part("views", events))
    parts.on_close(release)
    await parts.start(Part("writer", events))
    await parts.close()

    assert events == ["start views", "start writer", "close writer", "release client", "close views"]


async def test_a_part_that_fails_to_start_is_not_closed_and_those_before_it_are():
    events: list[str] = []
    parts = Parts()
    await parts.start(Part("views", events))

    with pytest.raises(RuntimeError):
        await parts.start(Part("writer", events, fails=True))
    await parts.close()

    assert events == ["start views", "close views"]

"""An edited channel is what the real ``pingura serve`` sends to: after ``PATCH /channels/{id}``
gives a webhook channel a new URL, the heartbeat's next alert reaches the new receiver and
nothing more reaches the old one (the notifier follows the channels topic)."""

from __future__ import annotations

from tests.e2e.conftest import eventually


async def test_an_alert_goes_to_the_url_the_channel_was_edited_to(server, http, alert_receiver):
    api = f"{server.url}/api/v1"
    async with http.post(f"{api}/channels", json={
        "kind": "webhook", "name": "ops", "config": {"url": alert_receiver.url("/old")}}) as r:  # fmt: skip
        assert r.status == 201, await r.text()
        channel = await r.json()
    async with http.post(f"{api}/heartbeats", json={
        "name": "nightly", "interval": "1h", "channels": [channel["id"]]}) as r:  # fmt: skip
        assert r.status == 201, await r.text()
        heartbeat = await r.json()
    async with http.post(f"{server.url}/api/heartbeat/{heartbeat['token']}/fail") as r:
        assert r.status == 200
    await eventually(lambda: alert_receiver.received("/old") or None)  # sent there while it was its URL

    async with http.patch(
        f"{api}/channels/{channel['id']}", json={"config": {"url": alert_receiver.url("/new")}}
    ) as r:
        assert r.status == 200, await r.text()
        assert (await r.json())["heartbeats"] == [{"id": heartbeat["id"], "name": "nightly"}]
    async with http.post(f"{server.url}/api/heartbeat/{heartbeat['token']}") as r:  # up again: an alert
        assert r.status == 200

    got = await eventually(lambda: alert_receiver.received("/new") or None)
    assert [request.body["kind"] for request in got] == ["up"], got
    assert [request.body["kind"] for request in alert_receiver.received("/old")] == ["down"]

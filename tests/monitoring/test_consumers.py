"""The /ws/events/ consumer and its relay, in memory (channels' communicator) on the real Redis.

Events are published the way masking/events.py does it: JSON on aws-masker:events:<type>."""

import asyncio
import json
import uuid

import pytest
from asgiref.testing import ApplicationCommunicator
from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session

from monitoring import consumers, relay
from monitoring.consumers import LiveEventsConsumer

TIMEOUT = 5


def an_event(event_type="masking", **fields) -> dict:
    event = {
        "event_id": uuid.uuid4().hex,
        "event_type": event_type,
        "timestamp": "2026-11-25T21:00:00.000Z",
        "request_id": "req-1",
        "tenant": "default",
        "source": "api",
        "counts_by_kind": {"ec2_instance": 2},
        "total": 2,
        "new_mappings": 1,
        "unresolved": 0,
        "duration_ms": 1.5,
        "bytes": 120,
    }
    event.update(fields)
    return event


def publish(redis_client, event: dict, channel: str | None = None) -> None:
    redis_client.publish(channel or f"aws-masker:events:{event['event_type']}", json.dumps(event))


class WebsocketCommunicator(ApplicationCommunicator):
    """A websocket client in memory. (channels.testing's own one imports daphne, which we do not run.)"""

    def __init__(self, application, path: str, user, session=None):
        route, _, query = path.partition("?")
        scope = {"type": "websocket", "path": route, "query_string": query.encode(), "headers": [], "user": user}
        if session is not None:
            scope["session"] = session
        super().__init__(application, scope)

    async def connect(self, timeout: float) -> bool:
        await self.send_input({"type": "websocket.connect"})
        return (await self.receive_output(timeout))["type"] == "websocket.accept"

    async def receive_json_from(self, timeout: float) -> dict:
        message = await self.receive_output(timeout)
        assert message["type"] == "websocket.send", message
        return json.loads(message["text"])

    async def disconnect(self) -> None:
        await self.send_input({"type": "websocket.disconnect", "code": 1000})
        await self.wait(TIMEOUT)


def run(scenario):
    return asyncio.run(asyncio.wait_for(scenario, timeout=60))


async def open_socket(user, query: str = "", session=None) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(LiveEventsConsumer.as_asgi(), f"/ws/events/?{query}", user, session)
    assert await communicator.connect(TIMEOUT)
    return communicator


async def open_live_socket(user, query: str = "", session=None) -> WebsocketCommunicator:
    """A staff socket whose relay is subscribed: what is published from now on reaches it."""
    communicator = await open_socket(user, query, session)
    assert (await communicator.receive_json_from(TIMEOUT))["type"] == "hello"
    assert await communicator.receive_json_from(TIMEOUT) == {"type": "state", "state": "live"}
    return communicator


async def next_events(communicator) -> list[dict]:
    frame = await communicator.receive_json_from(TIMEOUT)
    assert frame["type"] == "events", frame
    return frame["events"]


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("ops", password="pw", is_staff=True)


@pytest.fixture
def member(django_user_model):
    return django_user_model.objects.create_user("member", password="pw")


@pytest.mark.django_db
def test_a_staff_socket_receives_a_published_masking_event(staff, redis_client):
    event = an_event()

    async def scenario():
        socket = await open_live_socket(staff)
        publish(redis_client, event)
        assert await next_events(socket) == [event]
        await socket.disconnect()

    run(scenario())


@pytest.mark.django_db
def test_unmasking_and_alert_events_arrive_too(staff, redis_client):
    unmasking = an_event("unmasking", unresolved=1)
    alert = {"event_id": "a1", "event_type": "alert", "timestamp": "2026-11-25T21:00:00Z", "level": "warning"}

    async def scenario():
        socket = await open_live_socket(staff)
        publish(redis_client, unmasking)
        publish(redis_client, alert, "aws-masker:events:alerts")
        received = await next_events(socket)
        if len(received) < 2:
            received += await next_events(socket)
        assert received == [unmasking, alert]
        await socket.disconnect()

    run(scenario())


@pytest.mark.django_db
def test_an_anonymous_socket_is_closed_with_4401():
    async def scenario():
        socket = await open_socket(AnonymousUser())
        closing = await socket.receive_output(TIMEOUT)
        assert closing == {"type": "websocket.close", "code": 4401, "reason": "login required"}

    run(scenario())


@pytest.mark.django_db
def test_a_socket_of_a_user_who_is_not_staff_is_closed_with_4403(member):
    async def scenario():
        socket = await open_socket(member)
        assert (await socket.receive_output(TIMEOUT))["code"] == 4403

    run(scenario())


@pytest.mark.django_db
def test_an_unknown_event_type_filter_closes_the_socket_with_4400(staff):
    async def scenario():
        socket = await open_socket(staff, "type=everything")
        assert (await socket.receive_output(TIMEOUT))["code"] == 4400

    run(scenario())


@pytest.mark.django_db
def test_query_string_filters_forward_only_matching_events(staff, redis_client):
    wanted = an_event(tenant="acme", counts_by_kind={"s3_bucket": 1, "ec2_instance": 1})
    others = [
        an_event("unmasking", tenant="acme", counts_by_kind={"s3_bucket": 1}),
        an_event(tenant="globex", counts_by_kind={"s3_bucket": 1}),
        an_event(tenant="acme", counts_by_kind={"ec2_instance": 3}),
        an_event(tenant="acme", counts_by_kind={"s3_bucket": 0}),
    ]

    async def scenario():
        socket = await open_socket(staff, "type=masking&tenant=acme&kind=s3_bucket,iam_role")
        hello = await socket.receive_json_from(TIMEOUT)
        assert hello["filters"] == {"type": ["masking"], "tenant": ["acme"], "kind": ["iam_role", "s3_bucket"]}
        assert (await socket.receive_json_from(TIMEOUT))["state"] == "live"
        for event in others:
            publish(redis_client, event)
        publish(redis_client, wanted)
        assert await next_events(socket) == [wanted]
        assert await socket.receive_nothing(0.2)
        await socket.disconnect()

    run(scenario())


@pytest.mark.django_db
def test_unknown_fields_and_malformed_messages_never_reach_the_socket(staff, redis_client):
    leaky = an_event(original="i-0123456789abcdef0", text="arn:aws:iam::123456789012:role/x")
    clean = an_event()

    async def scenario():
        socket = await open_live_socket(staff)
        redis_client.publish("aws-masker:events:masking", b"not json")
        redis_client.publish("aws-masker:events:masking", json.dumps(["a", "list"]))
        redis_client.publish("aws-masker:events:masking", json.dumps({"event_type": "other"}))
        publish(redis_client, leaky)
        publish(redis_client, clean)
        received = await next_events(socket)
        if len(received) < 2:
            received += await next_events(socket)
        assert [e["event_id"] for e in received] == [leaky["event_id"], clean["event_id"]]
        assert "original" not in received[0] and "text" not in received[0]
        assert "123456789012" not in json.dumps(received)
        await socket.disconnect()

    run(scenario())


@pytest.mark.django_db
def test_viewers_share_one_redis_subscription_and_the_last_to_leave_closes_it(staff, redis_client):
    event = an_event()

    async def scenario():
        sockets = [await open_live_socket(staff) for _ in range(3)]
        assert redis_client.pubsub_numpat() == 1
        publish(redis_client, event)
        for socket in sockets:
            assert await next_events(socket) == [event]
        for socket in sockets:
            await socket.disconnect()
        await asyncio.sleep(0.2)  # the cancelled relay closes its connection
        assert redis_client.pubsub_numpat() == 0
        assert redis_client.client_list(_type="pubsub") == []

    run(scenario())


@pytest.mark.django_db
def test_a_viewer_is_told_when_redis_goes_away_and_receives_events_again_when_it_returns(
    staff, redis_server, monkeypatch
):
    monkeypatch.setattr(relay, "RETRY_DELAYS", (0.1,))
    event = an_event()

    async def scenario():
        socket = await open_live_socket(staff)
        redis_server.stop()
        assert await socket.receive_json_from(TIMEOUT * 3) == {"type": "state", "state": "unavailable"}
        redis_server.start()
        assert await socket.receive_json_from(TIMEOUT * 3) == {"type": "state", "state": "live"}
        publish(redis_server.client(), event)
        assert await next_events(socket) == [event]
        await socket.disconnect()

    run(scenario())


@pytest.mark.django_db
def test_a_viewer_that_falls_behind_loses_events_from_its_own_queue_and_is_told_how_many(staff):
    extra = 100

    async def scenario():
        socket = await open_live_socket(staff)
        # Delivered in one go, without yielding to the socket's sender: its queue overflows.
        for number in range(relay.QUEUE_SIZE + extra):
            relay.get_relay().publish_locally(json.dumps(an_event(event_id=str(number))))
        received, dropped = [], 0
        while len(received) + dropped < relay.QUEUE_SIZE + extra:
            frame = await socket.receive_json_from(TIMEOUT)
            received += frame["events"]
            dropped += frame["dropped"]
        assert dropped == extra
        assert [e["event_id"] for e in received] == [str(n) for n in range(relay.QUEUE_SIZE)]
        await socket.disconnect()

    run(scenario())


@pytest.mark.django_db
def test_fields_of_the_wrong_type_are_dropped_and_deeply_nested_messages_skipped(staff, redis_client):
    odd = an_event(tenant=["acme"], source={"x": 1}, total="3", counts_by_kind={"ec2_instance": "2"})
    clean = an_event(tenant="acme")

    async def scenario():
        socket = await open_live_socket(staff, "tenant=acme")
        redis_client.publish("aws-masker:events:masking", '{"event_type": "masking", "x": ' + "[" * 100_000)
        publish(redis_client, odd)
        publish(redis_client, clean)
        assert await next_events(socket) == [clean]
        await socket.disconnect()

    run(scenario())
    assert relay.clean_event(json.dumps(odd)) == {
        k: v for k, v in odd.items() if k not in {"tenant", "source", "total", "counts_by_kind"}
    }


@pytest.mark.django_db(transaction=True)
def test_a_viewer_whose_session_ends_while_watching_is_closed_with_4401(client, staff, monkeypatch):
    monkeypatch.setattr(consumers, "SESSION_RECHECK_SECONDS", 0.1)
    client.force_login(staff)
    key = client.session.session_key

    async def scenario():
        socket = await open_live_socket(staff, session=SessionStore(key))
        await database_sync_to_async(Session.objects.filter(session_key=key).delete)()
        assert (await socket.receive_output(TIMEOUT))["code"] == 4401
        await socket.disconnect()

    run(scenario())


@pytest.mark.django_db(transaction=True)
def test_a_viewer_who_loses_the_staff_flag_while_watching_is_closed_with_4403(client, staff, monkeypatch):
    monkeypatch.setattr(consumers, "SESSION_RECHECK_SECONDS", 0.1)
    client.force_login(staff)

    async def scenario():
        socket = await open_live_socket(staff, session=SessionStore(client.session.session_key))
        await database_sync_to_async(type(staff).objects.filter(pk=staff.pk).update)(is_staff=False)
        assert (await socket.receive_output(TIMEOUT))["code"] == 4403
        await socket.disconnect()

    run(scenario())


@pytest.mark.django_db(transaction=True)
def test_a_viewer_with_a_valid_staff_session_keeps_watching(client, staff, redis_client, monkeypatch):
    monkeypatch.setattr(consumers, "SESSION_RECHECK_SECONDS", 0.05)
    client.force_login(staff)
    event = an_event()

    async def scenario():
        socket = await open_live_socket(staff, session=SessionStore(client.session.session_key))
        await asyncio.sleep(0.3)  # several re-checks
        publish(redis_client, event)
        assert await next_events(socket) == [event]
        await socket.disconnect()

    run(scenario())


@pytest.mark.django_db
def test_the_live_page_is_for_staff(client, staff):
    client.force_login(staff)
    response = client.get("/dashboard/live/")
    assert response.status_code == 200
    assert b'data-socket-path="/ws/events/"' in response.content
    assert b"monitoring/live.js" in response.content


@pytest.mark.django_db
def test_the_live_page_sends_anonymous_visitors_and_non_staff_to_the_login(client, member):
    assert client.get("/dashboard/live/").url.startswith("/admin/login/")
    client.force_login(member)
    assert client.get("/dashboard/live/").url.startswith("/admin/login/")

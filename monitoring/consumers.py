"""Websocket /ws/events/: the live masking events, for staff only.

Frames sent (JSON text):
  {"type": "hello", "filters": {...}}                     once, after the socket is accepted
  {"type": "state", "state": "live" | "unavailable"}      whenever Redis Pub/Sub comes or goes
  {"type": "events", "events": [...], "dropped": n}       newest last; `dropped` = lost since the last frame

Refused sockets are accepted and then closed with a code, because a browser cannot read the HTTP
status of a refused handshake (it only sees 1006) and would retry forever.
"""

import asyncio
import json
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer

from monitoring.relay import InvalidFilter, Subscription, get_relay, parse_filter

CLOSE_NOT_AUTHENTICATED = 4401
CLOSE_NOT_STAFF = 4403
CLOSE_BAD_FILTER = 4400
MAX_EVENTS_PER_FRAME = 500


class LiveEventsConsumer(AsyncWebsocketConsumer):
    # No channel layer: the relay feeds this consumer directly, so no per-socket Redis polling.
    channel_layer_alias = None

    subscription: Subscription | None = None
    sender: asyncio.Task | None = None

    async def connect(self) -> None:
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_NOT_AUTHENTICATED, reason="login required")
            return
        if not (user.is_active and user.is_staff):
            await self.close(code=CLOSE_NOT_STAFF, reason="staff only")
            return
        try:
            event_filter = parse_filter(parse_qs(self.scope.get("query_string", b"").decode("latin1")))
        except InvalidFilter:
            await self.close(code=CLOSE_BAD_FILTER, reason="invalid filter")
            return
        await self.send(text_data=json.dumps({"type": "hello", "filters": event_filter.as_dict()}))
        self.subscription = get_relay().join(event_filter)
        self.sender = asyncio.create_task(self._forward(self.subscription))

    async def disconnect(self, code: int) -> None:
        self._stop()

    async def receive(self, text_data=None, bytes_data=None) -> None:
        """Viewers only listen; anything they send is ignored."""

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Also when the server cancels the connection without a disconnect message.
            self._stop()

    def _stop(self) -> None:
        if self.sender is not None:
            self.sender.cancel()
            self.sender = None
        if self.subscription is not None:
            get_relay().leave(self.subscription)
            self.subscription = None

    async def _forward(self, subscription: Subscription) -> None:
        queue = subscription.queue
        try:
            while True:
                items = [await queue.get()]
                while len(items) < MAX_EVENTS_PER_FRAME and not queue.empty():
                    items.append(queue.get_nowait())
                for frame in _frames(items, subscription.take_dropped()):
                    await self.send(text_data=frame)
        except OSError:
            # The client went away mid-send (uvicorn's ClientDisconnected); disconnect() cleans up.
            return


def _frames(items: list[tuple[str, str]], dropped: int) -> list[str]:
    """Consecutive events become one frame (cheap under load); state changes keep their order."""
    frames, events = [], []
    for kind, value in items:
        if kind == "event":
            events.append(value)
            continue
        if events:
            frames.append(_events_frame(events, 0))
            events = []
        frames.append(json.dumps({"type": "state", "state": value}))
    if events or dropped:
        frames.append(_events_frame(events, dropped))
    return frames


def _events_frame(events: list[str], dropped: int) -> str:
    # The events are already serialized once by the relay, for every viewer.
    return f'{{"type":"events","dropped":{dropped},"events":[{",".join(events)}]}}'

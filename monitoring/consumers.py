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
from importlib import import_module
from urllib.parse import parse_qs

from channels.auth import get_user
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from monitoring.relay import InvalidFilter, Subscription, get_relay, parse_filter

CLOSE_NOT_AUTHENTICATED = 4401
CLOSE_NOT_STAFF = 4403
CLOSE_BAD_FILTER = 4400
MAX_EVENTS_PER_FRAME = 500
# A dashboard stays open for hours: a logout, a password change or a lost staff flag must end
# the stream too, not only refuse the next connection.
SESSION_RECHECK_SECONDS = 60


def refusal(user) -> tuple[int, str] | None:
    """The close code and reason for a user who may not watch, or None."""
    if user is None or not user.is_authenticated:
        return CLOSE_NOT_AUTHENTICATED, "login required"
    if not (user.is_active and user.is_staff):
        return CLOSE_NOT_STAFF, "staff only"
    return None


class LiveEventsConsumer(AsyncWebsocketConsumer):
    # No channel layer: the relay feeds this consumer directly, so no per-socket Redis polling.
    channel_layer_alias = None

    subscription: Subscription | None = None
    tasks: tuple[asyncio.Task, ...] = ()

    async def connect(self) -> None:
        await self.accept()
        refused = refusal(self.scope.get("user"))
        if refused:
            await self.close(code=refused[0], reason=refused[1])
            return
        try:
            event_filter = parse_filter(parse_qs(self.scope.get("query_string", b"").decode("latin1")))
        except InvalidFilter:
            await self.close(code=CLOSE_BAD_FILTER, reason="invalid filter")
            return
        await self.send(text_data=json.dumps({"type": "hello", "filters": event_filter.as_dict()}))
        self.subscription = get_relay().join(event_filter)
        self.tasks = (asyncio.create_task(self._forward(self.subscription)),)
        session = self.scope.get("session")
        if session is not None and session.session_key:
            self.tasks += (asyncio.create_task(self._recheck(session.session_key)),)

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
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
        self.tasks = ()
        if self.subscription is not None:
            get_relay().leave(self.subscription)
            self.subscription = None

    async def _recheck(self, session_key: str) -> None:
        store = import_module(settings.SESSION_ENGINE).SessionStore
        while True:
            await asyncio.sleep(SESSION_RECHECK_SECONDS)
            refused = refusal(await get_user({"session": store(session_key)}))
            if refused:
                self._stop()
                await self.close(code=refused[0], reason=refused[1])
                return

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

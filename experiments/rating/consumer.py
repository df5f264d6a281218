"""The rater's websocket: authenticate the browser's session, validate each message, call
experiments.rating.sessions.message_handle, send back the messages it returns and tell the
dashboards when it says so. Transport only: no protocol rule lives here."""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core.cache import cache

from experiments.models import RaterSession
from experiments.rating.lifecycle import rater_session_key
from experiments.rating.messages import ProtocolError, message_parse
from experiments.rating.sessions import Replies, message_handle
from experiments.rating.threads import in_rater_thread
from experiments.services.progress import PROGRESS_EVENT, progress_group

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_SUPERSEDED = 4409
CLOSE_FLOOD = 4429
SERVER_ERROR = {
    "type": "error",
    "code": "server_error",
    "message": "The server could not handle that; nothing was stored.",
}


def _session_lookup(session_id: int, study_public_id: str) -> str | None:
    return (
        RaterSession.objects.filter(pk=session_id, study__public_id=study_public_id)
        .values_list("public_id", flat=True)
        .first()
    )


def _flooding(rater_group: str) -> bool:
    """More messages from this rater session than the limit within the last window, over all
    of its connections and workers: reconnecting does not start a fresh count. The arrival
    times live in the cache (Redis in production). Reading and writing them is not atomic, but
    one session has one live socket (an older one stands down), so no two writers meet but
    for a moment."""
    limit, window_s = settings.HYPE_RATER_FLOOD_LIMIT
    key = f"hype:flood:{rater_group}"
    now = time.time()
    recent = [t for t in (cache.get(key) or ()) if now - t <= window_s]
    recent.append(now)
    # Only the last limit + 1 arrivals can decide; the key outlives the window a little.
    cache.set(key, recent[-(limit + 1) :], timeout=math.ceil(window_s) + 1)
    return len(recent) > limit


@dataclass(frozen=True)
class _Outcome:
    messages: list[dict]
    replies: Replies | None = None
    flooded: bool = False


def _message_take(
    *, session_id: int, rater_group: str, text: str | None, greeted: bool
) -> _Outcome:
    """One message from the socket, start to end, in one trip to the rater's database thread:
    the flood count, the parse, and the service."""
    if _flooding(rater_group):
        return _Outcome(
            messages=[{"type": "error", "code": "rate_limited", "message": "Too many messages."}],
            flooded=True,
        )
    try:
        message = message_parse(text)
    except ProtocolError as error:
        return _Outcome(messages=[error.as_message()])
    try:
        replies = message_handle(session_id=session_id, message=message, greeted=greeted)
    except Exception:
        # Whatever failed rolled back with its transaction; the browser may resend.
        logger.exception("rater message failed (session %s)", session_id)
        return _Outcome(messages=[SERVER_ERROR])
    return _Outcome(messages=replies.messages, replies=replies)


class RaterConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.study_public_id = self.scope["url_route"]["kwargs"]["study"]
        django_session = self.scope.get("session")
        self.session_id = (
            django_session.get(rater_session_key(self.study_public_id)) if django_session else None
        )
        public_id = (
            await in_rater_thread(
                self.session_id, _session_lookup, self.session_id, self.study_public_id
            )
            if self.session_id
            else None
        )
        if public_id is None:
            # Accepted, then closed with the reason: a browser sees a refused handshake as a
            # network failure and retries forever; a close code after accepting it can read.
            await self.accept()
            await self._send_messages(
                [
                    {
                        "type": "error",
                        "code": "no_session",
                        "message": "There is no session of this study in this browser.",
                    }
                ]
            )
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.greeted = False
        self.rater_group = f"rater.{public_id}"
        await self.accept()
        # One live connection per rater: an older tab stands down, so no image is shown
        # in two places.
        await self.channel_layer.group_send(
            self.rater_group, {"type": "rater.superseded", "by": self.channel_name}
        )
        await self.channel_layer.group_add(self.rater_group, self.channel_name)

    async def disconnect(self, code):
        if getattr(self, "rater_group", None):
            await self.channel_layer.group_discard(self.rater_group, self.channel_name)

    async def rater_superseded(self, event):
        if event["by"] != self.channel_name:
            await self._send_messages(
                [
                    {
                        "type": "error",
                        "code": "superseded",
                        "message": "This session continues in another window.",
                    }
                ]
            )
            await self.channel_layer.group_discard(self.rater_group, self.channel_name)
            await self.close(code=CLOSE_SUPERSEDED)

    async def dispatch(self, message):
        # Channels' own dispatch first closes the default sync thread's stale connections,
        # one thread hop per message: this consumer's database work runs on
        # experiments.rating.threads, which looks after its connections itself.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def receive(self, text_data=None, bytes_data=None):
        outcome = await in_rater_thread(
            self.session_id,
            _message_take,
            session_id=self.session_id,
            rater_group=self.rater_group,
            text=text_data,
            greeted=self.greeted,
        )
        await self._send_messages(outcome.messages)
        if outcome.flooded:
            await self.close(code=CLOSE_FLOOD)
            return
        if outcome.replies is None:
            return
        self.greeted = outcome.replies.greeted
        if outcome.replies.progress_changed:
            await self.channel_layer.group_send(
                progress_group(self.study_public_id), PROGRESS_EVENT
            )

    async def _send_messages(self, messages: list[dict]) -> None:
        for message in messages:
            await self.send(text_data=json.dumps(message))

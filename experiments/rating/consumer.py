"""The rater's websocket: authenticate the browser's session, validate each message, call
experiments.rating.sessions.message_handle, send back the messages it returns and tell the
dashboards when it says so. Transport only: no protocol rule lives here."""

from __future__ import annotations

import json
import logging
import math
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core.cache import cache

from experiments.models import RaterSession
from experiments.rating.lifecycle import rater_session_key
from experiments.rating.messages import ProtocolError, message_parse
from experiments.rating.sessions import message_handle
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


@database_sync_to_async
def _session_lookup(session_id: int, study_public_id: str) -> str | None:
    return (
        RaterSession.objects.filter(pk=session_id, study__public_id=study_public_id)
        .values_list("public_id", flat=True)
        .first()
    )


class RaterConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.study_public_id = self.scope["url_route"]["kwargs"]["study"]
        django_session = self.scope.get("session")
        self.session_id = (
            django_session.get(rater_session_key(self.study_public_id)) if django_session else None
        )
        public_id = (
            await _session_lookup(self.session_id, self.study_public_id)
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

    async def _flooding(self) -> bool:
        """More messages from this rater session than the limit within the last window, over
        all of its connections and workers: reconnecting does not start a fresh count. The
        arrival times live in the cache (Redis in production). Reading and writing them is not
        atomic, but one session has one live socket (an older one stands down), so no two
        writers meet but for a moment."""
        limit, window_s = settings.HYPE_RATER_FLOOD_LIMIT
        key = f"hype:flood:{self.rater_group}"
        now = time.time()
        recent = [t for t in (await cache.aget(key) or ()) if now - t <= window_s]
        recent.append(now)
        # Only the last limit + 1 arrivals can decide; the key outlives the window a little.
        await cache.aset(key, recent[-(limit + 1) :], timeout=math.ceil(window_s) + 1)
        return len(recent) > limit

    async def receive(self, text_data=None, bytes_data=None):
        if await self._flooding():
            await self._send_messages(
                [{"type": "error", "code": "rate_limited", "message": "Too many messages."}]
            )
            await self.close(code=CLOSE_FLOOD)
            return
        try:
            message = message_parse(text_data)
        except ProtocolError as error:
            await self._send_messages([error.as_message()])
            return
        try:
            replies = await database_sync_to_async(message_handle)(
                session_id=self.session_id, message=message, greeted=self.greeted
            )
        except Exception:
            # Whatever failed rolled back with its transaction; the browser may resend.
            logger.exception("rater message failed (session %s)", self.session_id)
            await self._send_messages([SERVER_ERROR])
            return
        self.greeted = replies.greeted
        if replies.progress_changed:
            await self.channel_layer.group_send(
                progress_group(self.study_public_id), PROGRESS_EVENT
            )
        await self._send_messages(replies.messages)

    async def _send_messages(self, messages: list[dict]) -> None:
        for message in messages:
            await self.send(text_data=json.dumps(message))

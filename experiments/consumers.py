"""The rater's websocket: authenticate, validate each message, call one service, send back
the messages it returns. No protocol logic lives here (see experiments.services.raters)."""

from __future__ import annotations

import json
import logging
import time
from collections import deque

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from experiments.models import RaterSession
from experiments.rater_messages import AnswerMessage, Hello, Presented, message_parse
from experiments.services.raters import (
    ProtocolError,
    response_record,
    session_hello,
    trial_presented,
)

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_SUPERSEDED = 4409
CLOSE_FLOOD = 4429


def rater_session_key(study_public_id: str) -> str:
    """Where the rater's session id lives in their (cookie-backed) Django session."""
    return f"rater:{study_public_id}"


def study_group(study_public_id: str) -> str:
    """The channel-layer group researchers' dashboards listen to for live progress."""
    return f"study.{study_public_id}"


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
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.greeted = False
        self.recent: deque[float] = deque()
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

    def _flooding(self) -> bool:
        limit, window_s = settings.HYPE_RATER_FLOOD_LIMIT
        now = time.monotonic()
        self.recent.append(now)
        while self.recent and now - self.recent[0] > window_s:
            self.recent.popleft()
        return len(self.recent) > limit

    async def receive(self, text_data=None, bytes_data=None):
        if self._flooding():
            await self._send_messages(
                [{"type": "error", "code": "rate_limited", "message": "Too many messages."}]
            )
            await self.close(code=CLOSE_FLOOD)
            return
        message = None
        try:
            message = message_parse(text_data)
            replies = await self._handle(message)
        except ProtocolError as error:
            replies = [error.as_message()]
            # Name the trial the refused message was about, so the browser knows which of
            # its messages (a resent answer, a `presented`) the error concerns.
            if getattr(message, "trial", None):
                replies[0]["trial"] = message.trial
        except Exception:
            # Whatever failed rolled back with its transaction; the browser may resend.
            logger.exception("rater message failed (session %s)", self.session_id)
            replies = [
                {
                    "type": "error",
                    "code": "server_error",
                    "message": "The server could not handle that; nothing was stored.",
                }
            ]
        await self._send_messages(replies)

    async def _handle(self, message) -> list[dict]:
        if isinstance(message, Hello):
            self.greeted = True
            return await database_sync_to_async(session_hello)(
                session_id=self.session_id,
                refresh_ms=message.refresh_ms,
                screen_width=message.screen_width,
                screen_height=message.screen_height,
                device_pixel_ratio=message.device_pixel_ratio,
            )
        if not self.greeted:
            raise ProtocolError("hello_first", "Say hello first.")
        if isinstance(message, Presented):
            return await database_sync_to_async(trial_presented)(
                session_id=self.session_id, trial_public_id=message.trial
            )
        assert isinstance(message, AnswerMessage)
        replies = await database_sync_to_async(response_record)(
            session_id=self.session_id,
            trial_public_id=message.trial,
            choice=message.choice,
            measured=message.measured,
        )
        if any(r["type"] == "ack" and not r["duplicate"] for r in replies):
            await self.channel_layer.group_send(
                study_group(self.study_public_id), {"type": "study.progress"}
            )
        return replies

    async def _send_messages(self, messages: list[dict]) -> None:
        for message in messages:
            await self.send(text_data=json.dumps(message))

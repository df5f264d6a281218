"""The researcher's progress websocket: authorise the viewer, then send the study's progress
(experiments.services.progress) on connect and again whenever its group hears that progress
changed. Transport only."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import Http404

from experiments.models import Study
from experiments.services.access import study_for_viewer
from experiments.services.progress import progress_group, study_progress

logger = logging.getLogger(__name__)

# Same meaning as the pages' 404: an outsider does not learn whether the study exists.
CLOSE_NOT_FOUND = 4404
# A burst of answers (many raters at machine speed) costs each dashboard at most one
# recompute per interval; the state after the burst is always sent.
MIN_INTERVAL_S = 0.5
# The answer rate covers the last minute, so it has to fall back to zero when answers stop
# arriving; a slow refresh also shows raters who joined but have not answered yet.
IDLE_REFRESH_S = 10.0


@database_sync_to_async
def _visible_study(user, public_id: str) -> Study | None:
    try:
        return study_for_viewer(user, public_id)
    except Http404:
        return None


@database_sync_to_async
def _progress(study_id: int) -> dict:
    # Fetched again each time, so a change of status or target shows too.
    return study_progress(Study.objects.get(pk=study_id))


class StudyProgressConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.pump: asyncio.Task | None = None
        self.group: str | None = None
        public_id = self.scope["url_route"]["kwargs"]["study"]
        study = await _visible_study(self.scope.get("user"), public_id)
        if study is None:
            # Accepted and closed at once with the reason, and nothing else is sent: the page
            # reads the code and stops, where a refused handshake would make it retry forever.
            await self.accept()
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.study_id = study.pk
        self.group = progress_group(study.public_id)
        self.wake = asyncio.Event()
        await self.accept()
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self._send_progress()
        self.pump = asyncio.create_task(self._pump())

    async def disconnect(self, code):
        if self.pump is not None:
            self.pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.pump
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        # The dashboard only listens; whatever it sends is ignored.
        pass

    async def study_progress(self, event):
        # Only noted here: the pump coalesces the events and sends one fresh state.
        self.wake.set()

    async def _send_progress(self) -> None:
        progress = await _progress(self.study_id)
        self.sent_at = asyncio.get_running_loop().time()
        await self.send(text_data=json.dumps({"type": "progress", **progress}))

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=IDLE_REFRESH_S)
            wait = self.sent_at + MIN_INTERVAL_S - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            # Events that came during the wait are covered by this recompute; those that
            # come while it runs set the flag again and get the next one.
            self.wake.clear()
            try:
                await self._send_progress()
            except Exception:
                # A failed recompute must not end the live updates; the next event retries.
                logger.exception("study progress failed (study %s)", self.study_id)
                self.sent_at = loop.time()

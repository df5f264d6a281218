"""The addresses a crowd platform and a rater's browser need: the study link to paste into
Prolific (with its placeholders) or put in an MTurk HIT, where Prolific takes a finished
rater with a completion code, and where MTurk takes a finished assignment."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.urls import reverse

from experiments.models import Study

# Prolific replaces these placeholders in the study URL with the participant's ids.
PROLIFIC_PLACEHOLDERS = {
    "PROLIFIC_PID": "{{%PROLIFIC_PID%}}",
    "STUDY_ID": "{{%STUDY_ID%}}",
    "SESSION_ID": "{{%SESSION_ID%}}",
}


def study_link(*, study: Study, base_url: str) -> str:
    """The rater link of the study on the server at base_url (e.g. https://hype.example.org)."""
    return base_url.rstrip("/") + reverse("experiments:rater_landing", args=[study.public_id])


def prolific_study_url(*, study: Study, base_url: str) -> str:
    """The study URL to paste into Prolific's study form, placeholders and all."""
    query = "&".join(f"{name}={value}" for name, value in PROLIFIC_PLACEHOLDERS.items())
    return f"{study_link(study=study, base_url=base_url)}?{query}"


def prolific_complete_url(*, code: str) -> str:
    """Where Prolific takes a finished participant: its completion URL with the outcome's
    code (HYPE_PROLIFIC_COMPLETE_URL, https://app.prolific.com/submissions/complete)."""
    return f"{settings.HYPE_PROLIFIC_COMPLETE_URL}?{urlencode({'cc': code})}"


def mturk_worker_site(submit_to: str) -> str | None:
    """The MTurk worker site that turkSubmitTo names, as scheme://host[:port], if it is one
    of HYPE_MTURK_WORKER_SITES; None otherwise (never post a worker's answers elsewhere)."""
    try:
        parts = urlsplit(submit_to.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.username:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    allowed = {site.rstrip("/").lower() for site in settings.HYPE_MTURK_WORKER_SITES}
    return origin if origin in allowed else None


def mturk_submit_url(*, submit_to: str) -> str | None:
    """Where the finished assignment's form is posted: {turkSubmitTo}/mturk/externalSubmit,
    for an allowed worker site only."""
    site = mturk_worker_site(submit_to)
    return f"{site}/mturk/externalSubmit" if site else None

"""A researcher's API token for a crowd platform (Prolific): stored, replaced or removed by
its owner, and never shown back in full, only its last four characters."""

from __future__ import annotations

import re

from experiments.models import PlatformToken
from experiments.services.problems import InputProblems

MAX_TOKEN = PlatformToken._meta.get_field("token").max_length
_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]+")


def platform_token_hint(*, owner, platform: str) -> str | None:
    """ "…abcd" for the owner's stored token, None without one."""
    token = (
        PlatformToken.objects.filter(owner=owner, platform=platform)
        .values_list("token", flat=True)
        .first()
    )
    return f"…{token[-4:]}" if token else None


def platform_token_store(*, owner, platform: str, token: str) -> str:
    """Store (or replace) the owner's token; returns its hint. Raises InputProblems."""
    token = token.strip()
    if not token:
        raise InputProblems(["Paste the API token: the field is empty."])
    if len(token) > MAX_TOKEN or not _TOKEN.fullmatch(token):
        raise InputProblems(
            [f"That is not an API token: at most {MAX_TOKEN} letters, digits and - _ . ~ + / =."]
        )
    PlatformToken.objects.update_or_create(
        owner=owner, platform=platform, defaults={"token": token}
    )
    return f"…{token[-4:]}"


def platform_token_remove(*, owner, platform: str) -> bool:
    """Forget the owner's token; whether there was one."""
    deleted, _ = PlatformToken.objects.filter(owner=owner, platform=platform).delete()
    return bool(deleted)

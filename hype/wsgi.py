"""WSGI entry point, for HTTP-only deployments (websockets need hype.asgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hype.settings")

application = get_wsgi_application()

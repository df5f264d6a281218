"""The HYPE Django project: settings, URLs and the ASGI/WSGI entry points."""

__version__ = "0.1.0"

"""Websocket routes (the rater protocol lands here)."""

websocket_urlpatterns: list = []

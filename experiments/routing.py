"""Websocket routes."""

from django.urls import path

from experiments.consumers import RaterConsumer

websocket_urlpatterns = [
    path("ws/rate/<str:study>/", RaterConsumer.as_asgi()),
]

"""Websocket routes: the rater's task socket and the researcher's live progress."""

from django.urls import path

from experiments.dashboard.progress_consumer import StudyProgressConsumer
from experiments.rating.consumer import RaterConsumer

websocket_urlpatterns = [
    path("ws/rate/<str:study>/", RaterConsumer.as_asgi()),
    path("ws/studies/<str:study>/progress/", StudyProgressConsumer.as_asgi()),
]

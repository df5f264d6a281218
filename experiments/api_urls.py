"""SCAFFOLD (being written): REST API routes."""

urlpatterns = []

"""Routes of the REST API (docs/api.md), under /api/ in the experiments namespace: a token,
the studies, their models, results and exports, and the OpenAPI schema."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from experiments.api import views as api

urlpatterns = [
    path("token/", api.TokenObtain.as_view(), name="api_token"),
    path("studies/", api.StudyListView.as_view(), name="api_studies"),
    path("studies/<str:study>/", api.StudyDetailView.as_view(), name="api_study"),
    path("studies/<str:study>/models/", api.StudyModelsView.as_view(), name="api_study_models"),
    path("studies/<str:study>/results/", api.StudyResultsView.as_view(), name="api_study_results"),
    path(
        "studies/<str:study>/exports/<str:kind>",
        api.StudyExportView.as_view(),
        name="api_study_export",
    ),
    # The schema only: a Swagger or Redoc page would load its scripts from a CDN.
    path("schema/", SpectacularAPIView.as_view(), name="api_schema"),
]

"""Fuzzing the REST API from its own OpenAPI schema (schemathesis): every operation, called
with generated paths, parameters and bodies by a researcher with a token, answers without a
server error (no 5xx)."""

import json

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token

from hype.wsgi import application
from tests.factories import answered_session_make, study_make, user_make


def _api_schema() -> dict:
    """The schema /api/schema/ serves, as plain JSON values."""
    return json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True)))


schema = schemathesis.openapi.from_dict(_api_schema())
schema.app = application  # called in process, on the test's database


@pytest.fixture
def keep_the_test_connection():
    """The WSGI handler closes database connections around each request; the test's database
    lives in its connection, so keep it open, as Django's own test client does."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def token(db, keep_the_test_connection) -> str:
    ada = user_make("ada")
    study = study_make(owner=ada, models=("stylegan",))
    answered_session_make(study, study.models.get(), [[(500, True, True)] * 4])
    return Token.objects.create(user=ada).key


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
def test_no_api_operation_answers_generated_input_with_a_server_error(case, token):
    response = case.call(headers={"Authorization": f"Token {token}"})
    assert response.status_code < 500, (case.method, case.path, response.status_code)

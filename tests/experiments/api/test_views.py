"""The REST API: a training script gets a token, creates a study from zips, opens it, polls its
scores and downloads its exports. Every operation of the OpenAPI schema is tried by the owner,
staff, a colleague with read access, an outsider and an anonymous client."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from experiments.models import Baseline, Image, RaterSession, Study
from experiments.services.exports.downloads import EXPORT_KINDS, EXPORT_MEDIA_TYPES
from experiments.services.scores import study_results
from tests.factories import answered_session_make as rater
from tests.factories import image_make, session_make, study_make, user_make
from tests.pictures import SMALL, pictures, stored_files, zipped

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-1"  # tests.factories.user_make's
PERSONAS = ("owner", "staff", "colleague", "outsider", "anonymous")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Five accounts per test: the production hasher's deliberate slowness would dominate.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def timed(*exposures):
    return [(ms, True, True) for ms in exposures]


@pytest.fixture
def people():
    return {
        "owner": user_make("ada"),
        "staff": user_make("root", is_staff=True),
        "colleague": user_make("grace"),
        "outsider": user_make("mallory"),
    }


@pytest.fixture
def study(people):
    """The HYPE_time study of test_scores_service, worked by hand: model A's raters score
    502.5 and 485.0 ms (mean 493.75), model B's 487.5 and 412.5 (mean 450.0), and one of B's
    raters is still answering."""
    study = study_make(owner=people["owner"], models=("A", "B"), name="Faces", method="time")
    study.viewers.add(people["colleague"])
    a, b = study.models.get(name="A"), study.models.get(name="B")
    rater(study, a, [timed(500, 500, 470, 470), timed(500, 510, 520, 520)])  # 485, 520
    rater(study, a, [timed(500, 500, 500, 470), timed(500, 470, 470, 440)])  # 500, 470
    rater(study, b, [timed(500, 490, 480, 480), timed(500, 500, 490, 490)])  # 480, 495
    rater(study, b, [timed(400, 400, 400, 410), timed(420, 420, 430, 430)])  # 400, 425
    rater(study, b, [timed(900, 900)], status=RaterSession.Status.IN_TASK)  # not counted
    return study


def client_for(user=None) -> APIClient:
    """A client that authenticates as a script does: Authorization: Token ..."""
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def zip_upload(**overrides) -> dict:
    """A multipart body that creates a small HYPE_inf study with two models."""
    return {
        "name": "From a script",
        "method": "inf",
        **SMALL,
        "real_zip": zipped(pictures(4, seed=0), "real.zip"),
        "model_zips": [
            zipped(pictures(3, seed=100), "stylegan.zip"),
            zipped(pictures(3, seed=200), "progan.zip"),
        ],
        **overrides,
    }


def api_schema() -> dict:
    GENERATOR_STATS.reset()
    return SchemaGenerator().get_schema(request=None, public=True)


# --- The persona table: one row per operation of the schema --------------------------------


@dataclass(frozen=True)
class Operation:
    """How to call one operation, and the status each persona must get."""

    call: Callable  # (client, study, user or None) -> response
    expected: dict[str, int]


READ = {"owner": 200, "staff": 200, "colleague": 200, "outsider": 404, "anonymous": 401}
WRITE = {"owner": 200, "staff": 200, "colleague": 403, "outsider": 404, "anonymous": 401}


def _token(client, study, user):
    credentials = {"username": user.username, "password": PASSWORD} if user else {}
    return client.post("/api/token/", credentials, format="json")


def _patch(client, study, user):
    return client.patch(
        f"/api/studies/{study.public_id}/",
        {"name": "Faces, renamed", "status": "live"},
        format="json",
    )


OPERATIONS: dict[tuple[str, str], Operation] = {
    ("/api/token/", "post"): Operation(
        _token,
        # Anyone with an account gets their own token; no credentials, no token.
        {"owner": 200, "staff": 200, "colleague": 200, "outsider": 200, "anonymous": 400},
    ),
    ("/api/studies/", "get"): Operation(
        lambda client, study, user: client.get("/api/studies/"),
        {**READ, "outsider": 200},  # the outsider's list, without the study (checked below)
    ),
    ("/api/studies/", "post"): Operation(
        lambda client, study, user: client.post("/api/studies/", zip_upload(), format="multipart"),
        # Every researcher may create studies of their own.
        {"owner": 201, "staff": 201, "colleague": 201, "outsider": 201, "anonymous": 401},
    ),
    ("/api/studies/{study}/", "get"): Operation(
        lambda client, study, user: client.get(f"/api/studies/{study.public_id}/"), READ
    ),
    ("/api/studies/{study}/", "patch"): Operation(_patch, WRITE),
    ("/api/studies/{study}/models/", "get"): Operation(
        lambda client, study, user: client.get(f"/api/studies/{study.public_id}/models/"), READ
    ),
    ("/api/studies/{study}/results/", "get"): Operation(
        lambda client, study, user: client.get(f"/api/studies/{study.public_id}/results/"), READ
    ),
    ("/api/studies/{study}/exports/{kind}", "get"): Operation(
        lambda client, study, user: client.get(
            f"/api/studies/{study.public_id}/exports/trials.csv"
        ),
        READ,
    ),
}


def test_every_operation_of_the_schema_is_in_the_persona_table():
    schema = api_schema()
    operations = {
        (path, method)
        for path, item in schema["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert operations == set(OPERATIONS)


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("operation", list(OPERATIONS), ids=" ".join)
def test_each_persona_gets_the_status_the_table_gives(operation, persona, people, study):
    user = people.get(persona)
    client = client_for(user) if operation != ("/api/token/", "post") else APIClient()
    before = Study.objects.values_list("public_id", "name", "status").get(pk=study.pk)
    response = OPERATIONS[operation].call(client, study, user)
    assert response.status_code == OPERATIONS[operation].expected[persona], response.content
    if response.status_code == 404:
        # An outsider learns nothing: the same answer as for a study that does not exist.
        assert response.json() == {"detail": "No such study."}
    if response.status_code in (401, 403, 404):
        assert Study.objects.values_list("public_id", "name", "status").get(pk=study.pk) == before
    if persona == "outsider" and operation == ("/api/studies/", "get"):
        assert study.public_id not in {s["id"] for s in response.json()}


# --- The schema ------------------------------------------------------------------------------


def test_the_openapi_schema_validates_without_warnings(tmp_path):
    GENERATOR_STATS.reset()
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    assert "/api/studies/{study}/results/:" in target.read_text()


def test_the_schema_is_served_and_validates():
    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    validate_schema(schema)
    assert schema["info"]["title"] == "HYPE API"
    assert "/api/schema/" not in schema["paths"]


def test_the_schema_describes_the_upload_as_multipart_files_and_exports_as_files():
    paths = api_schema()["paths"]
    upload = paths["/api/studies/"]["post"]["requestBody"]["content"]
    assert list(upload) == ["multipart/form-data"]
    responses = paths["/api/studies/{study}/exports/{kind}"]["get"]["responses"]["200"]
    assert set(responses["content"]) == set(EXPORT_MEDIA_TYPES)
    kind = next(
        p
        for p in paths["/api/studies/{study}/exports/{kind}"]["get"]["parameters"]
        if p["name"] == "kind"
    )
    assert set(kind["schema"]["enum"]) == set(EXPORT_KINDS)


# --- Authentication --------------------------------------------------------------------------


def test_a_script_gets_a_token_with_its_password_and_uses_it(people, study):
    response = APIClient().post(
        "/api/token/", {"username": "ada", "password": PASSWORD}, format="json"
    )
    token = response.json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert [s["id"] for s in client.get("/api/studies/").json()] == [study.public_id]


def test_a_wrong_password_gets_no_token(people):
    response = APIClient().post(
        "/api/token/", {"username": "ada", "password": "guess"}, format="json"
    )
    assert response.status_code == 400 and "token" not in response.json()


def test_an_anonymous_client_is_asked_for_a_token(study):
    response = APIClient().get(f"/api/studies/{study.public_id}/results/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_a_wrong_token_is_refused(study):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef")
    assert client.get(f"/api/studies/{study.public_id}/").status_code == 401


def test_a_logged_in_browser_session_works_too(people, study):
    client = APIClient()
    client.force_login(people["colleague"])
    assert client.get(f"/api/studies/{study.public_id}/results/").status_code == 200


# --- Listing and opening studies ----------------------------------------------------------


def test_the_list_holds_own_and_shared_studies_and_says_which_can_be_changed(people, study):
    mine = study_make(owner=people["colleague"], name="Grace's own")
    study_make(owner=people["outsider"], name="Someone else's")
    listed = client_for(people["colleague"]).get("/api/studies/").json()
    assert {(s["id"], s["can_edit"]) for s in listed} == {
        (study.public_id, False),
        (mine.public_id, True),
    }
    assert len(client_for(people["staff"]).get("/api/studies/").json()) == 3


def test_a_study_shows_its_parameters_status_models_and_rater_link(people, study):
    data = client_for(people["owner"]).get(f"/api/studies/{study.public_id}/").json()
    assert (data["id"], data["name"], data["method"], data["status"]) == (
        study.public_id,
        "Faces",
        "time",
        "draft",
    )
    assert data["owner"] == "ada" and data["can_edit"] is True
    assert data["rater_link"] == f"http://testserver/s/{study.public_id}/"
    assert data["raters_started"] == 5
    assert data["parameters"]["staircase_step_down_ms"] == 30
    assert data["parameters"]["raters_per_model"] == 30
    assert [m["name"] for m in data["models"]] == ["A", "B"]
    assert data["links"]["results"].endswith(f"/api/studies/{study.public_id}/results/")
    assert set(data["links"]["exports"]) == set(EXPORT_KINDS)
    assert "pk" not in data and str(study.pk) not in data["url"].split("/")


def models_given_fakes(study: Study) -> None:
    """Fakes the fixture lacks (its raters saw only real images): A gets 3 task and 2
    qualification fakes, B 1 task fake, and the study a mask, which belongs to no model."""
    a, b = study.models.get(name="A"), study.models.get(name="B")
    for model, role, count in (
        (a, Image.Role.TASK, 3),
        (a, Image.Role.QUALIFICATION, 2),
        (b, Image.Role.TASK, 1),
    ):
        for _ in range(count):
            image_make(study, model=model, role=role)
    image_make(study, role=Image.Role.MASK)


def test_the_models_endpoint_counts_each_models_images(people, study):
    models_given_fakes(study)
    models = client_for(people["colleague"]).get(f"/api/studies/{study.public_id}/models/").json()
    assert models == [
        {"name": "A", "description": "", "images": {"task": 3, "qualification": 2}},
        {"name": "B", "description": "", "images": {"task": 1, "qualification": 0}},
    ]


def test_an_unknown_study_is_not_found(people):
    response = client_for(people["owner"]).get("/api/studies/no-such-study/results/")
    assert response.status_code == 404


# --- Results -----------------------------------------------------------------------------


def test_results_are_the_hand_computed_scores(people, study):
    data = client_for(people["colleague"]).get(f"/api/studies/{study.public_id}/results/").json()
    a, b = data["models"]
    assert (data["method"], data["unit"]) == ("time", "ms")
    assert (a["name"], a["rater_scores"], a["score"]["estimate"]) == ("A", [502.5, 485.0], 493.75)
    assert (b["name"], b["rater_scores"], b["score"]["estimate"]) == ("B", [487.5, 412.5], 450.0)
    assert (a["n_raters"], a["n_in_progress"], b["n_raters"], b["n_in_progress"]) == (2, 0, 2, 1)
    assert a["target_raters"] == 30 and a["score"]["confidence"] == 0.95
    assert a["fake_error"] is None  # HYPE_time has no fake/real errors
    assert data["comparison"]["test"] == "t-test"
    assert [(p["a"], p["b"]) for p in data["comparison"]["pairs"]] == [("A", "B")]


def test_results_are_study_results_to_the_last_digit(people, study):
    data = client_for(people["owner"]).get(f"/api/studies/{study.public_id}/results/").json()
    results = study_results(study)
    for shown, model in zip(data["models"], results.models, strict=True):
        score = model.score
        assert shown["score"] == {
            "estimate": score.estimate,
            "sd": score.sd,
            "low": score.low,
            "high": score.high,
            "n": score.n,
            "resamples": score.resamples,
            "confidence": score.confidence,
            "seed": score.seed,
            "method": score.method,
        }
        assert tuple(shown["rater_scores"]) == model.rater_scores
        fit = model.fit_score
        assert shown["fit_score"]["estimate"] == fit.estimate
        assert (shown["fit_score"]["low"], shown["fit_score"]["high"]) == (fit.low, fit.high)
        assert tuple(shown["fit_rater_scores"]) == model.fit_rater_scores
        assert (shown["fit_censored_low"], shown["fit_censored_high"]) == (
            model.fit_censored_low,
            model.fit_censored_high,
        )
    assert (data["interval_method"], data["time_score"]) == ("percentile", "mode")
    assert data["fit_slope_ms"] == results.fit_slope_ms
    comparison = results.comparison
    assert data["comparison"]["p_value"] == comparison.p_value
    assert data["comparison"]["statistic"] == comparison.statistic
    pair = data["comparison"]["pairs"][0]
    expected = comparison.pairs[0]
    assert (pair["difference"], pair["p_value"], pair["low"], pair["high"]) == (
        expected.difference,
        expected.p_value,
        expected.low,
        expected.high,
    )


def test_results_match_the_scores_csv_export(people, study):
    client = client_for(people["owner"])
    data = client.get(f"/api/studies/{study.public_id}/results/").json()
    response = client.get(f"/api/studies/{study.public_id}/exports/scores.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    applied = [row for row in rows if row["exclusions"] == "applied"]
    for shown, row in zip(data["models"], applied, strict=True):
        assert row["model"] == shown["name"]
        assert float(row["score"]) == shown["score"]["estimate"]
        assert float(row["ci_low"]) == shown["score"]["low"]
        assert float(row["ci_high"]) == shown["score"]["high"]
        assert float(row["sd"]) == shown["score"]["sd"]


def test_results_carry_the_stored_baselines_and_null_where_none(people, study):
    Baseline.objects.create(
        study=study,
        model=study.models.get(name="A"),
        fid=31.25,
        kid_mean=0.004,
        kid_sd=None,
        inception_score=2.5,
        inception_score_sd=0.125,
        precision=0.5,
        recall=0.75,
        n_real=40,
        n_fake=40,
        weights_origin="nvidia",
        weights_sha256="cd" * 32,
    )
    data = client_for(people["owner"]).get(f"/api/studies/{study.public_id}/results/").json()
    a, b = data["models"]
    assert a["baselines"] == {
        "fid": 31.25,
        "kid": 0.004,
        "kid_sd": None,
        "inception_score": 2.5,
        "inception_score_sd": 0.125,
        "precision": 0.5,
        "recall": 0.75,
        "n_real": 40,
        "n_fake": 40,
        "weights_sha256": "cd" * 32,
    }
    assert b["baselines"] is None


def test_hype_inf_results_give_fake_and_real_errors_and_null_where_undefined(people):
    study = study_make(owner=people["owner"], models=("A", "B"), method="inf")
    a, b = study.models.get(name="A"), study.models.get(name="B")
    rater(
        study,
        a,
        [[(None, True, True), (None, True, False), (None, False, True), (None, False, False)]],
    )
    rater(
        study,
        a,
        [[(None, True, True), (None, True, True), (None, False, False), (None, False, True)]],
    )
    rater(study, b, [[(None, True, True), (None, True, False)]])  # B's rater saw no fakes
    data = client_for(people["owner"]).get(f"/api/studies/{study.public_id}/results/").json()
    model_a, model_b = data["models"]
    assert data["unit"] == "error"
    assert model_a["score"]["estimate"] == 3 / 8
    assert (model_a["fake_error"], model_a["real_error"]) == (0.5, 0.25)
    assert model_a["rater_scores"] == [0.5, 0.25]
    # No fakes shown: no fake error, and strict JSON has null for it, never NaN.
    assert model_b["fake_error"] is None and model_b["real_error"] == 0.5
    assert data["comparison"] is None


def test_a_study_without_raters_has_no_scores_yet(people):
    study = study_make(owner=people["owner"], models=("A",))
    data = client_for(people["owner"]).get(f"/api/studies/{study.public_id}/results/").json()
    assert data["models"][0]["score"] is None and data["models"][0]["n_raters"] == 0


# --- Exports -----------------------------------------------------------------------------


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.parametrize("kind", EXPORT_KINDS)
def test_a_colleague_downloads_every_export_as_the_study_page_serves_it(kind, people, study):
    response = client_for(people["colleague"]).get(f"/api/studies/{study.public_id}/exports/{kind}")
    page = APIClient()
    page.force_login(people["colleague"])
    served = page.get(f"/studies/{study.public_id}/export/{kind}")
    assert (response.status_code, served.status_code) == (200, 200)
    assert response["Content-Type"].split(";")[0] in EXPORT_MEDIA_TYPES
    assert response["Content-Type"] == served["Content-Type"]
    assert "attachment" in response["Content-Disposition"]
    assert response["Content-Disposition"] == served["Content-Disposition"]
    body, served_body = body_of(response), body_of(served)
    assert body
    if kind == "bundle.json":
        # Each download says when it was made; everything else is the same.
        bundle, served_bundle = json.loads(body), json.loads(served_body)
        del bundle["exported_at"], served_bundle["exported_at"]
        assert bundle == served_bundle
    else:
        assert body == served_body


def test_an_export_is_sent_whatever_the_accept_header_says(people, study):
    response = client_for(people["owner"]).get(
        f"/api/studies/{study.public_id}/exports/trials.csv", HTTP_ACCEPT="text/csv"
    )
    assert response.status_code == 200


def test_an_unknown_export_is_not_found(people, study):
    response = client_for(people["owner"]).get(f"/api/studies/{study.public_id}/exports/x.xls")
    assert response.status_code == 404


# --- Creating a study --------------------------------------------------------------------


def test_a_script_creates_a_study_from_zips_opens_it_and_fetches_its_results(people):
    client = client_for(people["colleague"])
    response = client.post("/api/studies/", zip_upload(), format="multipart")
    assert response.status_code == 201, response.content
    created = response.json()
    study = Study.objects.get(public_id=created["id"])
    assert (study.owner, study.name, study.method, study.status) == (
        people["colleague"],
        "From a script",
        "inf",
        "draft",
    )
    assert created["parameters"]["qualification_trials"] == 2
    assert created["parameters"]["feedback"] == "every_trial"  # omitted: the default
    summary = created["import_summary"]
    assert summary["real"] == 4 and summary["fakes"] == {"stylegan": 3, "progan": 3}
    assert "Model stylegan: 3 fakes for the task" in summary["summary"]
    assert "hype-import-" not in json.dumps(summary)
    assert summary["audit"]["verdict"] in {"pass", "warn"}

    opened = client.get(created["url"]).json()
    assert [(m["name"], m["images"]["task"]) for m in opened["models"]] == [
        ("progan", 3),
        ("stylegan", 3),
    ]
    assert opened["images"]["real"]["task"] == 4

    # Raters answer; the script polls the results and gets study_results' numbers.
    stylegan = study.models.get(name="stylegan")
    rater(study, stylegan, [[(None, True, True), (None, False, False)]])
    results = client.get(opened["links"]["results"]).json()
    expected = study_results(study).models[1]
    assert results["models"][1]["name"] == "stylegan"
    assert results["models"][1]["score"]["estimate"] == expected.score.estimate == 0.5


def test_parameters_and_a_display_size_can_be_given_at_creation(people):
    response = client_for(people["owner"]).post(
        "/api/studies/",
        zip_upload(
            method="time",
            status="live",
            feedback="false",
            staircase_step_up_ms=20,
            display_width=16,
            display_height=16,
            masks=4,
        ),
        format="multipart",
    )
    assert response.status_code == 201, response.content
    study = Study.objects.get(public_id=response.json()["id"])
    assert (study.method, study.status, study.feedback, study.staircase_step_up_ms) == (
        "time",
        "live",
        "none",  # false, as older scripts send it: no feedback
        20,
    )
    assert (study.display_width, study.display_height) == (16, 16)
    assert Image.objects.filter(study=study, role=Image.Role.MASK).count() == 4


def test_a_corrupt_zip_is_refused_and_nothing_is_created(people):
    broken = SimpleUploadedFile("stylegan.zip", b"PK\x03\x04 not really a zip")
    response = client_for(people["owner"]).post(
        "/api/studies/", zip_upload(model_zips=[broken]), format="multipart"
    )
    assert response.status_code == 400
    assert response.json() == {
        "detail": "The study was not created.",
        "problems": ["stylegan.zip: not a zip file"],
    }
    assert not Study.objects.exists() and stored_files() == []


def test_too_few_images_are_refused_naming_the_zip_and_nothing_is_created(people):
    response = client_for(people["owner"]).post(
        "/api/studies/",
        zip_upload(real_zip=zipped(pictures(1, seed=0), "real.zip")),
        format="multipart",
    )
    assert response.status_code == 400
    problems = response.json()["problems"]
    assert any(p.startswith("real.zip: 1 usable images") for p in problems), problems
    assert "hype-import-" not in json.dumps(problems)
    assert not Study.objects.exists() and stored_files() == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"real_zip": ""}, "real_zip"),
        ({"model_zips": []}, "model_zips"),
        ({"method": "fast"}, "method"),
        ({"status": "closed"}, "status"),
        ({"display_width": 16}, "display_height"),
        ({"confidence": 2}, "confidence"),
    ],
)
def test_a_bad_field_is_refused_before_any_import(overrides, field, people):
    body = {k: v for k, v in zip_upload(**overrides).items() if v not in ("", [])}
    response = client_for(people["owner"]).post("/api/studies/", body, format="multipart")
    assert response.status_code == 400
    problems = response.json()["problems"]
    assert any(p.startswith(f"{field}: ") for p in problems), problems
    assert not Study.objects.exists()


def test_two_zips_for_the_same_model_are_refused(people):
    response = client_for(people["owner"]).post(
        "/api/studies/",
        zip_upload(
            model_zips=[
                zipped(pictures(3, seed=100), "stylegan.zip"),
                zipped(pictures(3, seed=200), "stylegan.ZIP"),
            ]
        ),
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["problems"] == ["model_zips: Two zips name the same model: stylegan."]


def test_a_qualification_zip_keeps_fakes_for_the_qualification(people):
    qualification = {
        **pictures(1, seed=300, folder="stylegan/"),
        **pictures(1, seed=400, folder="progan/"),
    }
    response = client_for(people["owner"]).post(
        "/api/studies/",
        zip_upload(qualification_zip=zipped(qualification, "qualification.zip")),
        format="multipart",
    )
    assert response.status_code == 201, response.content
    assert response.json()["import_summary"]["qualification"] == {
        "real": 1,
        "stylegan": 1,
        "progan": 1,
    }


# --- Changing a study ----------------------------------------------------------------------


def patch(client, study, body):
    return client.patch(f"/api/studies/{study.public_id}/", body, format="json")


def test_the_owner_opens_closes_and_reopens_a_study(people, study):
    client = client_for(people["owner"])
    for status in ("live", "closed", "live"):
        response = patch(client, study, {"status": status})
        assert response.status_code == 200 and response.json()["status"] == status
    study.refresh_from_db()
    assert study.status == "live"


def test_a_study_never_goes_back_to_draft(people, study):
    client = client_for(people["owner"])
    patch(client, study, {"status": "live"})
    response = patch(client, study, {"status": "draft", "name": "Renamed"})
    assert response.status_code == 400
    assert "a live study cannot become draft" in response.json()["problems"][0]
    study.refresh_from_db()
    assert (study.status, study.name) == ("live", "Faces")  # nothing changed


def test_a_colleague_cannot_change_anything(people, study):
    client = client_for(people["colleague"])
    for body in ({"name": "Mine now"}, {"status": "live"}, {"parameters": {"feedback": False}}):
        response = patch(client, study, body)
        assert response.status_code == 403
        assert response.json() == {"detail": "This study is shared with you read-only."}
    study.refresh_from_db()
    assert (study.name, study.status, study.feedback) == ("Faces", "draft", "every_trial")


def test_the_name_changes_even_after_raters_started(people, study):
    response = patch(client_for(people["owner"]), study, {"name": "  FFHQ faces  "})
    assert response.status_code == 200 and response.json()["name"] == "FFHQ faces"


def test_parameters_cannot_change_once_raters_have_started(people, study):
    response = patch(
        client_for(people["owner"]), study, {"parameters": {"staircase_step_up_ms": 20}}
    )
    assert response.status_code == 400
    assert response.json()["problems"] == [
        "parameters: protocol parameters cannot change once raters have started (5 rater "
        "sessions so far); asked to change staircase_step_up_ms. Create a new study instead."
    ]
    study.refresh_from_db()
    assert study.staircase_step_up_ms == 10


def test_unchanged_parameters_sent_back_are_no_change(people, study):
    client = client_for(people["owner"])
    parameters = client.get(f"/api/studies/{study.public_id}/").json()["parameters"]
    response = patch(client, study, {"parameters": parameters, "status": "live"})
    assert response.status_code == 200, response.content


def test_parameters_change_before_any_rater_starts(people):
    study = study_make(owner=people["owner"])
    response = patch(
        client_for(people["owner"]),
        study,
        {"parameters": {"raters_per_model": 40, "threshold_tie_rule": "lowest"}},
    )
    assert response.status_code == 200, response.content
    assert response.json()["parameters"]["raters_per_model"] == 40
    study.refresh_from_db()
    assert (study.raters_per_model, study.threshold_tie_rule) == (40, "lowest")
    session_make(study)
    response = patch(client_for(people["owner"]), study, {"parameters": {"raters_per_model": 50}})
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"parameters": {"time_blocks": 5}}, "time_blocks decided which images"),
        ({"parameters": {"display_width": 64}}, "display_width decided which images"),
        ({"parameters": {"staircase_start_ms": 50}}, "staircase: it must start inside"),
        ({"name": "   "}, "name: This field may not be blank."),
        ({"parameters": {"confidence": 1.5}}, "parameters.confidence: Ensure this value"),
        ({"parameters": {"raters_per_modle": 4}}, "Unknown field(s): parameters.raters_per_modle"),
    ],
)
def test_a_bad_change_is_refused_with_a_clear_problem(body, problem, people):
    study = study_make(owner=people["owner"], name="Untouched")
    response = patch(client_for(people["owner"]), study, body)
    assert response.status_code == 400
    assert any(problem in p for p in response.json()["problems"]), response.json()
    study.refresh_from_db()
    assert (study.name, study.time_blocks, study.staircase_start_ms) == ("Untouched", 3, 500)


@pytest.mark.parametrize(
    "body",
    [
        {"raters_per_model": 40},
        {"parameters": {"raters_per_modle": 40}},
        {"status": "open"},
        {"parameters": {"confidence": 1.5}},
    ],
)
def test_an_unknown_field_or_invalid_value_is_refused(body, people):
    study = study_make(owner=people["owner"])
    response = patch(client_for(people["owner"]), study, body)
    assert response.status_code == 400, response.content
    study.refresh_from_db()
    assert (study.raters_per_model, study.status, study.confidence) == (30, "draft", 0.95)


def test_staff_change_any_study(people, study):
    response = patch(client_for(people["staff"]), study, {"status": "live"})
    assert response.status_code == 200


def test_feedback_true_or_false_from_an_older_script_means_every_trial_or_none(people, study):
    RaterSession.objects.filter(study=study).delete()  # parameters change before raters only
    client = client_for(people["owner"])
    response = patch(client, study, {"parameters": {"feedback": False}})
    assert response.status_code == 200, response.content
    assert response.json()["parameters"]["feedback"] == "none"
    response = patch(client, study, {"parameters": {"feedback": "qualification"}})
    assert response.json()["parameters"]["feedback"] == "qualification"
    response = patch(client, study, {"parameters": {"feedback": "sometimes"}})
    assert response.status_code == 400
    study.refresh_from_db()
    assert study.feedback == "qualification"


def test_exclusion_rules_change_after_raters_started_and_are_applied_at_once(people, study):
    client = client_for(people["owner"])
    # Other parameters are fixed once raters have started...
    assert patch(client, study, {"parameters": {"staircase_step_up_ms": 20}}).status_code == 400
    # ...the exclusion rules are not. Every task answer of these raters says "real": a rule
    # against 3 same answers in a row excludes the raters with 3 or more.
    response = patch(client, study, {"parameters": {"exclude_same_key_streak": 3}})
    assert response.status_code == 200, response.content
    assert response.json()["parameters"]["exclude_same_key_streak"] == 3
    excluded = RaterSession.objects.filter(study=study, status="excluded")
    assert excluded.exists() and set(excluded.values_list("excluded_by", flat=True)) == {"rule"}
    results = client.get(f"/api/studies/{study.public_id}/results/").json()
    assert results["n_excluded"] == excluded.count()
    assert results["without_exclusions"]["n_excluded"] == excluded.count()
    assert (
        sum(m["n_raters"] for m in results["without_exclusions"]["models"])
        == sum(m["n_raters"] for m in results["models"]) + excluded.count()
    )

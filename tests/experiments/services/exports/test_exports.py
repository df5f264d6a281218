"""The study exports: one CSV row per answered trial, per rater and per model, a LaTeX table
and a JSON bundle, all carrying the hand-worked scores of small studies (the same numbers as
study_results and the study page), never a worker id, and only for the owner and colleagues.
"""

import csv
import io
import json
import tomllib
import warnings

import pytest
from asgiref.sync import async_to_sync

import hype
from experiments.models import (
    PROTOCOL_PARAMETERS,
    RECRUITING_FIELDS,
    Answer,
    Block,
    Image,
    RaterSession,
    Study,
)
from experiments.services.exports import cells
from experiments.services.exports.cells import iso_utc
from experiments.services.exports.downloads import EXPORT_KINDS, export_filename, export_response
from experiments.services.exports.latex import latex_table
from experiments.services.exports.trials import TRIAL_COLUMN_NAMES
from experiments.services.scores import study_results
from tests import REPO_ROOT
from tests.bulk import bulk_study_make
from tests.factories import (
    answered_session_make,
    block_make,
    image_make,
    session_make,
    study_make,
    trial_make,
    user_make,
)

pytestmark = pytest.mark.django_db

ROOT = REPO_ROOT
WORKER_ID = "PROLIFIC-5f3a9c-worker"


def timed(*exposures):
    return [(ms, True, True) for ms in exposures]


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def applied_rows(text: str) -> list[dict[str, str]]:
    """The study's result in scores.csv: its rows with exclusions applied."""
    return [row for row in rows_of(text) if row["exclusions"] == "applied"]


def export_text(study, kind) -> str:
    response = export_response(study, kind)
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


@pytest.fixture(autouse=True)
def _quick_passwords(settings):
    # Every persona is a user with a password; hashing it properly costs half a second.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def owner():
    return user_make("ada")


@pytest.fixture
def time_study(owner):
    """Two models, two completed raters each, whose rater scores are worked out by hand."""
    study = study_make(owner=owner, models=("A", "B"), method=Study.Method.TIME, name="FFHQ")
    a, b = study.models.get(name="A"), study.models.get(name="B")
    # Block modes (ties: the mean) and rater means.
    first = answered_session_make(study, a, [timed(500, 500, 470, 470), timed(500, 510, 520, 520)])
    answered_session_make(study, a, [timed(500, 500, 500, 470), timed(500, 470, 470, 440)])
    answered_session_make(study, b, [timed(500, 490, 480, 480), timed(500, 500, 490, 490)])
    answered_session_make(study, b, [timed(400, 400, 400, 410), timed(420, 420, 430, 430)])
    answered_session_make(study, b, [timed(900, 900)], status=RaterSession.Status.IN_TASK)
    # An unanswered trial: served, never answered, so never a row.
    unanswered = trial_make(block_make(first, index=2), image=image_make(study), index=8)
    assert not Answer.objects.filter(trial=unanswered).exists()
    RaterSession.objects.filter(pk=first.pk).update(
        user_agent="Mozilla/5.0 (X11) Firefox/128.0",
        screen_width=1920,
        screen_height=1080,
        device_pixel_ratio=2.0,
        refresh_ms=16.7,
    )
    # A Prolific rater who failed the qualification: no model, one flagged answer.
    failed = session_make(
        study,
        model=None,
        external_id=WORKER_ID,
        source=RaterSession.Source.PROLIFIC,
        status=RaterSession.Status.FAILED_QUALIFICATION,
        qualification_correct=1,
        qualification_total=2,
    )
    block = block_make(failed, index=0, kind=Block.Kind.QUALIFICATION)
    trial = trial_make(block, image=image_make(study), index=0)
    trial.requested_ms = None
    trial.save()
    Answer.objects.create(
        trial=trial,
        response="fake",
        correct=False,
        rt_ms=812.5,
        shown_ms=None,
        page_hidden=True,
        flags=["page_hidden", "presentation_not_reported"],
    )
    # Another researcher's study: none of its rows may leak into this one's exports.
    other = study_make(models=("elsewhere",))
    answered_session_make(other, other.models.get(), [timed(300, 300)])
    return study


@pytest.fixture
def inf_study(owner):
    study = study_make(owner=owner, models=("A", "B"), method=Study.Method.INF, name="CelebA")
    a, b = study.models.get(name="A"), study.models.get(name="B")
    # (None, is_real, correct). Rater 1: wrong on one real and one fake; rater 2: on a fake.
    answered_session_make(
        study,
        a,
        [[(None, True, True), (None, True, False), (None, False, True), (None, False, False)]],
    )
    answered_session_make(
        study,
        a,
        [[(None, True, True), (None, True, True), (None, False, False), (None, False, True)]],
    )
    answered_session_make(study, b, [[(None, True, True), (None, False, True)]])
    return study


# --- trials.csv -------------------------------------------------------------------------


def test_the_trials_csv_has_the_long_format_columns_of_the_design():
    design = """study model rater source block block_kind trial_index image_id is_real
    requested_ms frames shown_ms mask_ms refresh_ms response correct rt_ms page_hidden flags
    presented_at answered_at rater_status excluded excluded_reason excluded_by excluded_at"""
    assert tuple(design.split()) == TRIAL_COLUMN_NAMES


def test_the_trials_csv_has_one_row_per_answered_trial_of_this_study_only(time_study):
    rows = rows_of(export_text(time_study, "trials.csv"))
    answered = Answer.objects.filter(trial__session__study=time_study)
    assert len(rows) == answered.count() == 4 * 8 + 2 + 1
    assert {r["study"] for r in rows} == {time_study.public_id}
    assert {r["model"] for r in rows} == {"A", "B", ""}
    assert sorted(r["image_id"] for r in rows) == sorted(
        answered.values_list("trial__image__public_id", flat=True)
    )


def test_a_trial_row_joins_the_trial_its_answer_and_its_rater(time_study):
    rows = rows_of(export_text(time_study, "trials.csv"))
    first = RaterSession.objects.filter(study=time_study).order_by("id").first()
    mine = [r for r in rows if r["rater"] == first.public_id]
    assert [int(r["requested_ms"]) for r in mine] == [500, 500, 470, 470, 500, 510, 520, 520]
    assert [(r["block"], r["trial_index"]) for r in mine[3:5]] == [("0", "3"), ("1", "4")]
    row = mine[0]
    assert row["model"] == "A" and row["source"] == "link" and row["block_kind"] == "task"
    assert (row["is_real"], row["correct"], row["response"]) == ("true", "true", "real")
    assert (row["rt_ms"], row["shown_ms"], row["page_hidden"], row["flags"]) == (
        "500.0",
        "",
        "false",
        "",
    )
    assert row["answered_at"].endswith("Z") and "T" in row["answered_at"]


def test_a_qualification_answer_of_a_rater_without_a_model_is_exported_with_its_flags(
    time_study,
):
    failed = RaterSession.objects.get(study=time_study, external_id=WORKER_ID)
    (row,) = [
        r for r in rows_of(export_text(time_study, "trials.csv")) if r["rater"] == failed.public_id
    ]
    assert row["model"] == "" and row["source"] == "prolific"
    assert row["block_kind"] == "qualification" and row["requested_ms"] == ""
    assert (row["response"], row["correct"], row["rt_ms"]) == ("fake", "false", "812.5")
    assert row["page_hidden"] == "true"
    assert row["flags"] == "page_hidden;presentation_not_reported"
    assert row["presented_at"] == ""


def test_times_are_iso_8601_in_utc():
    import datetime as dt

    zone = dt.timezone(dt.timedelta(hours=2))
    moment = dt.datetime(2024, 5, 1, 14, 0, 0, 250000, tzinfo=zone)
    assert iso_utc(moment) == "2024-05-01T12:00:00.250000Z"


def test_no_export_names_a_raters_worker_id(time_study):
    for kind in EXPORT_KINDS:
        assert WORKER_ID not in export_text(time_study, kind), kind


# --- raters.csv -------------------------------------------------------------------------


def test_the_raters_csv_has_one_row_per_session_with_hand_worked_scores(time_study):
    rows = rows_of(export_text(time_study, "raters.csv"))
    assert len(rows) == 6
    assert [(r["model"], r["status"], r["time_score_ms"], r["in_score"]) for r in rows] == [
        ("A", "completed", "502.5", "true"),
        ("A", "completed", "485.0", "true"),
        ("B", "completed", "487.5", "true"),
        ("B", "completed", "412.5", "true"),
        ("B", "in_task", "", "false"),  # not completed: no score, not counted
        ("", "failed_qualification", "", "false"),
    ]
    first, failed = rows[0], rows[-1]
    assert first["answers"] == "8" and first["task_answers"] == "8" and first["flagged"] == "0"
    assert first["user_agent"] == "Mozilla/5.0 (X11) Firefox/128.0"
    assert (first["screen_width"], first["screen_height"]) == ("1920", "1080")
    assert (first["device_pixel_ratio"], first["refresh_ms"]) == ("2.0", "16.7")
    assert (first["qualification_total"], first["qualification_passed"]) == ("", "")
    assert (failed["qualification_correct"], failed["qualification_total"]) == ("1", "2")
    assert failed["qualification_passed"] == "false" and failed["source"] == "prolific"
    assert (failed["answers"], failed["task_answers"], failed["flagged"]) == ("1", "0", "1")
    assert first["inf_error"] == "" and first["started_at"].endswith("Z")


def test_the_raters_csv_scores_are_study_results_rater_scores(time_study, inf_study):
    for study in (time_study, inf_study):
        column = "time_score_ms" if study.method == Study.Method.TIME else "inf_error"
        rows = [r for r in rows_of(export_text(study, "raters.csv")) if r["in_score"] == "true"]
        for model in study_results(study).models:
            exported = tuple(float(r[column]) for r in rows if r["model"] == model.name)
            assert exported == model.rater_scores


def test_the_raters_csv_gives_each_hype_inf_rater_their_fake_and_real_errors(inf_study):
    rows = rows_of(export_text(inf_study, "raters.csv"))
    assert [(r["inf_error"], r["inf_fake_error"], r["inf_real_error"]) for r in rows] == [
        ("0.5", "0.5", "0.5"),
        ("0.25", "0.5", "0.0"),
        ("0.0", "0.0", "0.0"),
    ]
    assert {r["time_score_ms"] for r in rows} == {""}


def test_a_formula_in_a_raters_user_agent_is_not_run_by_a_spreadsheet(time_study):
    RaterSession.objects.filter(study=time_study).update(user_agent='=HYPERLINK("x")')
    rows = rows_of(export_text(time_study, "raters.csv"))
    assert {r["user_agent"] for r in rows} == {'\'=HYPERLINK("x")'}


# --- scores.csv -------------------------------------------------------------------------


def test_the_scores_csv_has_the_hand_worked_hype_time_scores(time_study):
    a, b = applied_rows(export_text(time_study, "scores.csv"))
    # Two raters: the bootstrap means are the lower score (1/4), the mean (1/2) or the
    # higher score (1/4), so the 95% interval runs from one rater's score to the other's
    # and the bootstrap SD is |difference| / (2 sqrt 2).
    assert (a["model"], a["method"], a["unit"]) == ("A", "time", "ms")
    assert (float(a["score"]), float(a["ci_low"]), float(a["ci_high"])) == (493.75, 485.0, 502.5)
    assert (float(b["score"]), float(b["ci_low"]), float(b["ci_high"])) == (450.0, 412.5, 487.5)
    assert float(a["sd"]) == pytest.approx(17.5 / 8**0.5, rel=0.03)
    assert float(b["sd"]) == pytest.approx(75 / 8**0.5, rel=0.03)
    assert (a["n_raters"], a["n_in_progress"], b["n_raters"], b["n_in_progress"]) == (
        "2",
        "0",
        "2",
        "1",
    )
    assert (a["confidence"], a["resamples"]) == ("0.95", "10000")
    assert a["fake_error"] == a["real_error"] == ""


def test_the_scores_csv_carries_study_results_numbers_at_full_precision(time_study, inf_study):
    for study in (time_study, inf_study):
        results = study_results(study)
        for row, model in zip(
            applied_rows(export_text(study, "scores.csv")), results.models, strict=True
        ):
            score = model.score
            assert row["model"] == model.name
            assert (float(row["score"]), float(row["sd"])) == (score.estimate, score.sd)
            assert (float(row["ci_low"]), float(row["ci_high"])) == (score.low, score.high)
            assert int(row["seed"]) == score.seed and int(row["n_raters"]) == model.n_raters


def test_the_scores_csv_has_the_hand_worked_hype_inf_errors(inf_study):
    a, b = applied_rows(export_text(inf_study, "scores.csv"))
    assert (a["unit"], float(a["score"]), float(a["fake_error"]), float(a["real_error"])) == (
        "error",
        3 / 8,
        0.5,
        0.25,
    )
    assert (float(a["ci_low"]), float(a["ci_high"])) == (0.25, 0.5)
    assert (float(b["score"]), b["n_raters"]) == (0.0, "1")


def test_the_automated_baselines_stay_empty_until_a_study_has_them(time_study):
    for row in rows_of(export_text(time_study, "scores.csv")):
        assert [row[c] for c in ("fid", "kid", "precision", "recall")] == ["", "", "", ""]


def test_a_model_without_completed_raters_has_an_empty_score_row(owner):
    study = study_make(owner=owner, models=("lonely",))
    (row,) = applied_rows(export_text(study, "scores.csv"))
    assert row["model"] == "lonely" and row["n_raters"] == "0"
    assert row["score"] == row["ci_low"] == row["seed"] == ""


# --- results.tex ------------------------------------------------------------------------


def test_the_latex_table_shows_the_hand_worked_hype_time_scores(time_study):
    table = export_text(time_study, "results.tex")
    sd = {m.name: m.score.sd for m in study_results(time_study).models}
    assert f"    A & 493.8 & {sd['A']:.1f} & 485.0--502.5 & 2 \\\\\n" in table
    assert f"    B & 450.0 & {sd['B']:.1f} & 412.5--487.5 & 2 \\\\\n" in table
    assert r"HYPE$_{\mathrm{time}}$ (ms)" in table and r"95\% CI (ms)" in table
    lines = table.splitlines()
    assert lines.index(r"    \toprule") < lines.index(r"    \midrule")
    assert lines.index(r"    \midrule") < lines.index(r"    \bottomrule")


def test_the_latex_table_shows_hype_inf_in_percent_with_fake_and_real_errors(inf_study):
    table = export_text(inf_study, "results.tex")
    sd = {m.name: m.score.sd for m in study_results(inf_study).models}
    assert f"    A & 37.5 & 50.0 & 25.0 & {100 * sd['A']:.1f} & 25.0--50.0 & 2 \\\\\n" in table
    assert "    B & 0.0 & 0.0 & 0.0 & 0.0 & 0.0--0.0 & 1 \\\\\n" in table
    assert r"HYPE$_{\infty}$ (\%)" in table


def test_the_latex_table_and_the_study_page_show_the_same_numbers(client, owner, time_study):
    client.force_login(owner)
    page = client.get(f"/studies/{time_study.public_id}/").content.decode()
    table = export_text(time_study, "results.tex")
    for model in study_results(time_study).models:
        score = model.score
        assert f"{score.estimate:.1f} ms" in page
        assert f"{score.low:.1f}--{score.high:.1f}" in table
        assert f"{score.low:.1f} ms" in page and f"{score.high:.1f} ms" in page


def test_latex_special_characters_in_model_names_are_escaped(owner):
    study = study_make(owner=owner, models=("Style_GAN & 50%",), name="#1 {faces} ~ $\\ok^")
    table = latex_table(study)
    assert r"    Style\_GAN \& 50\% & --- & --- & --- & 0 \\" in table
    assert r"\#1 \{faces\} \textasciitilde{} \$\textbackslash{}ok\textasciicircum{}" in table
    assert "Style_GAN" not in table


# --- bundle.json ------------------------------------------------------------------------


def test_the_bundle_parameters_are_the_method_and_every_protocol_field(time_study):
    bundle = json.loads(export_text(time_study, "bundle.json"))
    parameters = bundle["parameters"]
    # Who and what the study is, and what the server records (the served image length), are
    # not parameters: the same set the importer leaves out, so no export invents one.
    not_parameters = {"id", "owner", "name", "status", "public_id", "created_at", "updated_at"}
    not_parameters |= {"group", *RECRUITING_FIELDS}
    protocol = {f.name for f in Study._meta.concrete_fields} - not_parameters
    assert set(parameters) == protocol
    assert set(parameters) - {"method"} == set(PROTOCOL_PARAMETERS)
    for name, value in parameters.items():
        assert value == getattr(time_study, name), name
    assert parameters["staircase_step_down_ms"] == 30 and parameters["method"] == "time"
    assert bundle["study"]["public_id"] == time_study.public_id


def test_the_bundle_carries_study_results_at_full_precision(time_study, inf_study):
    for study in (time_study, inf_study):
        results = study_results(study)
        bundle = json.loads(export_text(study, "bundle.json"))
        for entry, model in zip(bundle["results"]["models"], results.models, strict=True):
            assert entry["name"] == model.name
            assert tuple(entry["rater_scores"]) == model.rater_scores
            assert entry["score"]["estimate"] == model.score.estimate
            assert (entry["score"]["low"], entry["score"]["high"]) == (
                model.score.low,
                model.score.high,
            )
            assert entry["score"]["seed"] == model.score.seed
            assert entry["fid"] is None
    bundle = json.loads(export_text(time_study, "bundle.json"))
    assert bundle["results"]["models"][0]["rater_scores"] == [502.5, 485.0]
    comparison = bundle["results"]["comparison"]
    assert comparison["test"] == "t-test" and comparison["pairs"][0]["difference"] == 43.75
    inf = json.loads(export_text(inf_study, "bundle.json"))["results"]["models"][0]["inf"]
    assert (inf["error"], inf["fake_error"], inf["real_error"]) == (3 / 8, 0.5, 0.25)


def test_the_bundle_counts_images_and_raters_per_model(time_study):
    # The hand-worked raters saw real images only: the models' fakes are added here.
    model_a, model_b = time_study.models.get(name="A"), time_study.models.get(name="B")
    for model, role, count in (
        (model_a, Image.Role.TASK, 3),
        (model_a, Image.Role.QUALIFICATION, 2),
        (model_b, Image.Role.TASK, 1),
    ):
        for _ in range(count):
            image_make(time_study, model=model, role=role)
    image_make(time_study, role=Image.Role.MASK)
    bundle = json.loads(export_text(time_study, "bundle.json"))
    a, b = bundle["models"]
    assert (a["name"], a["raters"], b["raters"]) == (
        "A",
        {"completed": 2},
        {"completed": 2, "in_task": 1},
    )
    assert bundle["unassigned_raters"] == {"failed_qualification": 1}
    assert bundle["real_images"] == {"task": 4 * 8 + 2 + 1 + 1}
    assert a["images"] == {"task": 3, "qualification": 2}
    assert b["images"] == {"task": 1}
    assert bundle["mask_images"] == 1


def test_the_bundle_names_the_software_that_computed_it(time_study):
    software = json.loads(export_text(time_study, "bundle.json"))["software"]
    assert set(software) == {"hype", "git_commit", "python", "django", "numpy", "scipy"}
    assert software["hype"] == hype.__version__
    assert software["git_commit"] is None or len(software["git_commit"]) == 40


def test_the_hype_version_is_the_one_pyproject_declares():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert hype.__version__ == declared


def test_a_missing_fake_error_is_null_in_json_not_nan(owner):
    study = study_make(owner=owner, models=("m",), method=Study.Method.INF)
    answered_session_make(study, study.models.get(), [[(None, True, True), (None, True, False)]])
    text = export_text(study, "bundle.json")
    assert "NaN" not in text
    assert json.loads(text)["results"]["models"][0]["inf"]["fake_error"] is None


# --- Who may download -------------------------------------------------------------------


def url(study, kind):
    return f"/studies/{study.public_id}/export/{kind}"


def download(client, study, kind):
    response = client.get(url(study, kind))
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body


@pytest.mark.parametrize("kind", EXPORT_KINDS)
def test_the_owner_downloads_every_export(client, owner, time_study, kind):
    client.force_login(owner)
    response, body = download(client, time_study, kind)
    assert response.status_code == 200 and body
    assert response["Content-Disposition"] == f'attachment; filename="hype-ffhq-{kind}"'


@pytest.mark.parametrize("kind", EXPORT_KINDS)
def test_a_colleague_with_read_access_downloads_every_export(client, time_study, kind):
    colleague = user_make("grace")
    time_study.viewers.add(colleague)
    client.force_login(colleague)
    response, body = download(client, time_study, kind)
    assert response.status_code == 200 and body


@pytest.mark.parametrize("kind", [*EXPORT_KINDS, "secrets.csv"])
def test_the_outsider_gets_404_for_every_export(client, time_study, kind):
    client.force_login(user_make("mallory"))
    assert client.get(url(time_study, kind)).status_code == 404


@pytest.mark.parametrize("kind", EXPORT_KINDS)
def test_an_anonymous_visitor_is_sent_to_log_in(client, time_study, kind):
    response = client.get(url(time_study, kind))
    assert response.status_code == 302 and "login" in response["Location"]


def test_an_unknown_export_is_not_found(client, owner, time_study):
    client.force_login(owner)
    assert client.get(url(time_study, "everything.zip")).status_code == 404


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_exports_are_only_read(client, owner, time_study, method):
    client.force_login(owner)
    assert getattr(client, method)(url(time_study, "trials.csv")).status_code == 405


def test_each_export_has_its_media_type(client, owner, time_study):
    client.force_login(owner)
    types = {kind: client.get(url(time_study, kind))["Content-Type"] for kind in EXPORT_KINDS}
    assert types == {
        "trials.csv": "text/csv; charset=utf-8",
        "raters.csv": "text/csv; charset=utf-8",
        "scores.csv": "text/csv; charset=utf-8",
        "soft_labels.csv": "text/csv; charset=utf-8",
        "results.tex": "application/x-tex; charset=utf-8",
        "bundle.json": "application/json; charset=utf-8",
    }


def test_the_file_name_is_a_safe_slug_of_the_study_name(owner):
    study = study_make(owner=owner, name='Visages "été" /../ 2024')
    assert export_filename(study, "trials.csv") == "hype-visages-ete-2024-trials.csv"
    assert export_filename(study_make(owner=owner, name="???"), "bundle.json") == (
        "hype-study-bundle.json"
    )


# --- Streaming --------------------------------------------------------------------------


def test_a_csv_export_is_sent_in_chunks_as_it_is_read(time_study, monkeypatch):
    monkeypatch.setattr(cells, "CSV_CHUNK_ROWS", 4)
    response = export_response(time_study, "trials.csv")
    parts = list(response.streaming_content)
    assert len(parts) == 1 + 9  # the header, then 35 rows in chunks of 4
    assert len(rows_of(b"".join(parts).decode())) == 35


def test_under_asgi_a_csv_export_streams_instead_of_being_collected(time_study, monkeypatch):
    # Django collects a plain StreamingHttpResponse's synchronous iterator into a list to
    # serve it over ASGI (and warns); the export's response hands over one chunk at a time.
    monkeypatch.setattr(cells, "CSV_CHUNK_ROWS", 4)
    response = export_response(time_study, "trials.csv")

    async def receive():
        return [part async for part in response]

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parts = async_to_sync(receive)()
    assert len(parts) == 10
    assert b"".join(parts).decode() == export_text(time_study, "trials.csv")


def test_on_simulated_staircases_the_raters_csv_scores_equal_study_results(owner):
    study = bulk_study_make(owner=owner, models=2, raters_per_model=3, trials_per_rater=60)
    rows = rows_of(export_text(study, "raters.csv"))
    results = study_results(study)
    assert [m.n_raters for m in results.models] == [3, 3]
    for model in results.models:
        exported = tuple(float(r["time_score_ms"]) for r in rows if r["model"] == model.name)
        assert exported == model.rater_scores
    assert len(rows_of(export_text(study, "trials.csv"))) == 2 * 3 * 60


# --- Exclusions ---------------------------------------------------------------------------------


def test_an_excluded_raters_rows_stay_in_the_trials_csv_with_the_exclusion(time_study):
    from experiments.services.exclusions import rater_exclude

    before = rows_of(export_text(time_study, "trials.csv"))
    first = RaterSession.objects.filter(study=time_study).order_by("id").first()
    rater_exclude(first, reason="=cmd|' /C calc'!A0", by="ada")
    after = rows_of(export_text(time_study, "trials.csv"))
    assert len(after) == len(before)
    mine = [r for r in after if r["rater"] == first.public_id]
    assert mine and all(
        (r["rater_status"], r["excluded"], r["excluded_by"]) == ("excluded", "true", "ada")
        for r in mine
    )
    # A reason is text a spreadsheet must not run.
    assert {r["excluded_reason"] for r in mine} == {"'=cmd|' /C calc'!A0"}
    others = [r for r in after if r["rater"] != first.public_id]
    assert {r["excluded"] for r in others} == {"false"} and {
        r["excluded_reason"] for r in others
    } == {""}


def test_the_raters_csv_carries_the_exclusion_and_counts_each_flag(time_study):
    from experiments.services.exclusions import rater_exclude

    first = RaterSession.objects.filter(study=time_study).order_by("id").first()
    answers = Answer.objects.filter(trial__session=first).order_by("trial__index")
    for answer, flags in zip(answers, (["fast"], ["fast", "same_key"], ["idle_gap"]), strict=False):
        answer.flags = flags
        answer.save()
    rater_exclude(first, reason="too quick", by="ada")
    rows = {r["rater"]: r for r in rows_of(export_text(time_study, "raters.csv"))}
    row = rows[first.public_id]
    assert (row["status"], row["excluded"], row["in_score"]) == ("excluded", "true", "false")
    assert (row["status_before_exclusion"], row["excluded_reason"], row["excluded_by"]) == (
        "completed",
        "too quick",
        "ada",
    )
    assert row["excluded_at"] and row["exclusion_undone_at"] == ""
    # Their score is still there: they completed (the result without exclusions counts it).
    assert float(row["time_score_ms"]) == 502.5
    assert (row["flag_fast"], row["flag_same_key"], row["flag_idle_gap"], row["flagged"]) == (
        "2",
        "1",
        "1",
        "3",
    )
    assert row["flag_page_hidden"] == "0"

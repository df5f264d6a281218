"""What a study owes its raters, worked out by hand: base pay and bonus per rater, the cost so
far and at the target, and the payment downloads line by line (approvals, Prolific's bulk
bonus list, the MTurk bonus list), with paid bonuses left out and formula-like ids defused."""

import re
import uuid

import pytest
from django.http import Http404

from experiments.models import Answer, Block, Payment, RaterSession, Study
from experiments.services.exports.payments import (
    APPROVAL_COLUMNS,
    MTURK_BONUS_COLUMNS,
    PAYMENT_DOWNLOAD_KINDS,
    PAYMENT_DOWNLOADS,
    PROLIFIC_BONUS_COLUMNS,
    payment_csv,
    payment_download_response,
    payment_downloads_summary,
)
from experiments.services.payments import (
    base_due_cents,
    bonus_due_cents,
    cents_as_amount,
    rater_pay_list,
    study_cost,
)
from tests import REPO_ROOT
from tests.factories import block_make, image_make, session_make, study_make, trial_make

pytestmark = pytest.mark.django_db

Status = RaterSession.Status
Source = RaterSession.Source
QUALIFICATION, TASK = Block.Kind.QUALIFICATION, Block.Kind.TASK

PROLIFIC_1 = "5f1e0c0ffee0aaaa00000001"
PROLIFIC_2 = "5f1e0c0ffee0aaaa00000002"
MTURK_3 = "A1MTURKWORKER3"
MTURK_4 = "A2MTURKWORKER4"


def rater_make(study, pool, *, source, worker, status, qualification, task, session_id=""):
    """A rater of the study with qualification = (correct, wrong) answers and task = one
    (correct, wrong) per task block; images from pool (each once per rater)."""
    session = session_make(
        study,
        external_id=worker,
        source=source,
        status=status,
        platform_session_id=session_id,
        platform_study_id="STUDY9" if session_id else "",
    )
    blocks = ([(QUALIFICATION, qualification)] if qualification else []) + [
        (TASK, counts) for counts in task
    ]
    index = 0
    for number, (kind, (right, wrong)) in enumerate(blocks):
        block = block_make(session, index=number, kind=kind)
        for position, correct in enumerate([True] * right + [False] * wrong):
            image = pool[index]
            trial = trial_make(block, image=image, index=index, position=position)
            response = "real" if image.is_real == correct else "fake"
            Answer.objects.create(trial=trial, response=response, correct=correct, rt_ms=500)
            index += 1
    return session


def hand_worked_study(owner=None) -> Study:
    """Base 1.50 GBP, 0.02 per correct task answer, two models x 30 raters. Due:
    1 Prolific, completed, 37 correct task answers (8 in the qualification): 1.50 + 0.74 = 2.24
    2 Prolific, failed the qualification: 0.00
    3 MTurk, still in the task with 12 correct: 0.00
    4 MTurk, completed, 35 correct: 1.50 + 0.70 = 2.20
    5 study link, completed, 49 correct: 1.50 + 0.98 = 2.48
    Total 6.92 (base 4.50, bonus 2.42)."""
    kwargs = {"owner": owner} if owner else {}
    study = study_make(
        models=("A", "B"),
        name="Faces pay",
        currency="GBP",
        pay_base_cents=150,
        pay_per_correct_cents=2,
        raters_per_model=30,
        **kwargs,
    )
    pool = [image_make(study) for _ in range(60)]
    rater_make(
        study,
        pool,
        source=Source.PROLIFIC,
        worker=PROLIFIC_1,
        status=Status.COMPLETED,
        qualification=(8, 2),
        task=[(20, 5), (17, 8)],
        session_id="sess-p1",
    )
    rater_make(
        study,
        pool,
        source=Source.PROLIFIC,
        worker=PROLIFIC_2,
        status=Status.FAILED_QUALIFICATION,
        qualification=(4, 6),
        task=[],
        session_id="sess-p2",
    )
    rater_make(
        study,
        pool,
        source=Source.MTURK,
        worker=MTURK_3,
        status=Status.IN_TASK,
        qualification=(9, 1),
        task=[(12, 3)],
        session_id="ASSIGN3",
    )
    rater_make(
        study,
        pool,
        source=Source.MTURK,
        worker=MTURK_4,
        status=Status.COMPLETED,
        qualification=(10, 0),
        task=[(20, 5), (15, 10)],
        session_id="ASSIGN4",
    )
    rater_make(
        study,
        pool,
        source=Source.LINK,
        worker="link-rater-5",
        status=Status.COMPLETED,
        qualification=(7, 3),
        task=[(25, 0), (24, 1)],
    )
    return study


def pay_record(study, worker, kind, status, amount_cents, currency="GBP"):
    return Payment.objects.create(
        session=RaterSession.objects.get(study=study, external_id=worker),
        kind=kind,
        amount_cents=amount_cents,
        currency=currency,
        status=status,
        request_token=uuid.uuid4().hex,
    )


def code_of(study, worker):
    return RaterSession.objects.get(study=study, external_id=worker).completion_code


@pytest.fixture
def study():
    return hand_worked_study()


# --- What each rater is due ---------------------------------------------------------------


def test_the_due_functions_pay_completed_raters_only():
    study = Study(pay_base_cents=150, pay_per_correct_cents=2)
    assert base_due_cents(study, status=Status.COMPLETED) == 150
    assert bonus_due_cents(study, status=Status.COMPLETED, task_correct=37) == 74
    for status in (Status.FAILED_QUALIFICATION, Status.IN_TASK, Status.ABANDONED, Status.EXCLUDED):
        assert base_due_cents(study, status=status) == 0
        assert bonus_due_cents(study, status=status, task_correct=37) == 0


def test_amounts_have_two_decimals():
    assert [cents_as_amount(c) for c in (0, 2, 74, 150, 224, 13840)] == [
        "0.00",
        "0.02",
        "0.74",
        "1.50",
        "2.24",
        "138.40",
    ]


def test_each_rater_is_due_the_hand_worked_amount(study):
    pays = rater_pay_list(study)
    assert [(p.worker_id, p.answers, p.task_correct) for p in pays] == [
        (PROLIFIC_1, 60, 37),  # the qualification's 8 correct answers are not counted
        (PROLIFIC_2, 10, 0),
        (MTURK_3, 25, 12),
        (MTURK_4, 60, 35),
        ("link-rater-5", 60, 49),
    ]
    assert [(p.base_cents, p.bonus_cents, p.due_cents) for p in pays] == [
        (150, 74, 224),
        (0, 0, 0),
        (0, 0, 0),
        (150, 70, 220),
        (150, 98, 248),
    ]
    assert all(p.currency == "GBP" for p in pays)


# --- The cost so far and at the target ------------------------------------------------------


def test_the_cost_so_far_and_projected(study):
    pay_record(study, PROLIFIC_1, Payment.Kind.BASE, Payment.Status.PAID, 150)
    pay_record(study, MTURK_4, Payment.Kind.BASE, Payment.Status.PAID, 150)
    pay_record(study, MTURK_4, Payment.Kind.BONUS, Payment.Status.SENT, 70)
    cost = study_cost(study=study)
    assert (cost.completed, cost.base_cents, cost.bonus_cents, cost.due_cents) == (3, 450, 242, 692)
    # Paid: the two approvals; the sent bonus is not known to be paid.
    assert (cost.paid_cents, cost.unpaid_cents, cost.differing) == (300, 392, 0)
    # 2 models x 30 raters x (1.50 + 2.42 / 3) = 90.00 + 48.40.
    assert (cost.models, cost.target_raters) == (2, 60)
    assert (cost.projected_base_cents, cost.projected_bonus_cents) == (9000, 4840)
    assert cost.projected_cents == 13840
    assert cost.amounts == {
        "base": "4.50",
        "bonus": "2.42",
        "due": "6.92",
        "paid": "3.00",
        "unpaid": "3.92",
        "projected_base": "90.00",
        "projected_bonus": "48.40",
        "projected": "138.40",
    }


def test_the_projected_bonus_is_rounded_half_up_to_the_cent():
    study = study_make(
        models=("A", "B", "C"), pay_base_cents=100, pay_per_correct_cents=1, raters_per_model=1
    )
    pool = [image_make(study) for _ in range(75)]
    for worker, correct in (("w1", 74), ("w2", 75)):
        rater_make(
            study,
            pool,
            source=Source.PROLIFIC,
            worker=worker,
            status=Status.COMPLETED,
            qualification=None,
            task=[(correct, 0)],
        )
    cost = study_cost(study=study)
    # 3 raters x a mean of 74.5 cents = 223.5 -> 224.
    assert (cost.target_raters, cost.projected_base_cents, cost.projected_bonus_cents) == (
        3,
        300,
        224,
    )


def test_without_a_completed_rater_the_bonus_is_not_projected():
    study = study_make(models=("A", "B"), pay_base_cents=150, pay_per_correct_cents=2)
    session_make(study, status=Status.IN_TASK)
    cost = study_cost(study=study)
    assert (cost.completed, cost.due_cents) == (0, 0)
    assert (cost.projected_base_cents, cost.projected_bonus_cents, cost.projected_cents) == (
        9000,
        None,
        None,
    )
    assert cost.amounts["projected_base"] == "90.00" and cost.amounts["projected"] is None


def test_a_study_without_a_bonus_projects_its_base_pay_alone():
    study = study_make(models=("A",), pay_base_cents=150, pay_per_correct_cents=0)
    assert study_cost(study=study).projected_cents == 30 * 150


def test_a_recorded_payment_that_is_not_what_is_due_is_counted_apart(study):
    pay_record(study, PROLIFIC_1, Payment.Kind.BASE, Payment.Status.PAID, 140)
    pay_record(study, MTURK_4, Payment.Kind.BASE, Payment.Status.PAID, 150, currency="USD")
    cost = study_cost(study=study)
    # Paid in the study's currency only; both are not what is due.
    assert (cost.paid_cents, cost.differing) == (140, 2)


# --- The downloads, line by line --------------------------------------------------------------


def test_the_approvals_list_has_every_crowd_rater_and_approves_the_completed(study):
    code = {w: code_of(study, w) for w in (PROLIFIC_1, PROLIFIC_2, MTURK_3, MTURK_4)}
    assert payment_csv(study=study, kind="approvals.csv").split("\r\n") == [
        "platform,worker_id,platform_study_id,platform_session_id,status,completion_code,approve,"
        "base_due,currency,excluded_reason",
        f"prolific,{PROLIFIC_1},STUDY9,sess-p1,completed,{code[PROLIFIC_1]},true,1.50,GBP,",
        f"prolific,{PROLIFIC_2},STUDY9,sess-p2,failed_qualification,{code[PROLIFIC_2]},false,0.00,GBP,",
        f"mturk,{MTURK_3},STUDY9,ASSIGN3,in_task,{code[MTURK_3]},false,0.00,GBP,",
        f"mturk,{MTURK_4},STUDY9,ASSIGN4,completed,{code[MTURK_4]},true,1.50,GBP,",
        "",
    ]


def test_the_prolific_list_is_prolifics_bulk_bonus_format(study):
    # No header, "<participant id>,<amount>" lines ended by \n.
    assert payment_csv(study=study, kind="prolific-bonuses.csv") == f"{PROLIFIC_1},0.74\n"


def test_the_mturk_list_has_worker_assignment_amount_and_reason(study):
    assert payment_csv(study=study, kind="mturk-bonuses.csv").split("\r\n") == [
        "WorkerId,AssignmentId,BonusAmount,Reason",
        f"{MTURK_4},ASSIGN4,0.70,Bonus for 35 correct answers in the image study. Thank you!",
        "",
    ]


@pytest.mark.parametrize(
    "status", [Payment.Status.PAID, Payment.Status.SENT, Payment.Status.PREPARED]
)
def test_a_recorded_bonus_is_left_out_of_the_bonus_lists(study, status):
    pay_record(study, PROLIFIC_1, Payment.Kind.BONUS, status, 74)
    pay_record(study, MTURK_4, Payment.Kind.BONUS, status, 70)
    assert payment_csv(study=study, kind="prolific-bonuses.csv") == ""
    assert payment_csv(study=study, kind="mturk-bonuses.csv") == (
        "WorkerId,AssignmentId,BonusAmount,Reason\r\n"
    )


def test_a_paid_base_keeps_the_bonus_in_the_list(study):
    pay_record(study, PROLIFIC_1, Payment.Kind.BASE, Payment.Status.PAID, 150)
    assert payment_csv(study=study, kind="prolific-bonuses.csv") == f"{PROLIFIC_1},0.74\n"


def test_a_completed_rater_without_a_correct_answer_has_no_bonus_line():
    study = study_make(pay_base_cents=150, pay_per_correct_cents=2)
    pool = [image_make(study) for _ in range(5)]
    rater_make(
        study,
        pool,
        source=Source.PROLIFIC,
        worker="5f1e0c0ffee0aaaa00000009",
        status=Status.COMPLETED,
        qualification=None,
        task=[(0, 5)],
    )
    assert payment_csv(study=study, kind="prolific-bonuses.csv") == ""
    assert payment_csv(study=study, kind="approvals.csv").count("\r\n") == 2


def test_a_worker_id_a_spreadsheet_would_run_is_neutralised():
    study = study_make(pay_base_cents=150, pay_per_correct_cents=2, currency="USD")
    pool = [image_make(study) for _ in range(3)]
    for source, worker, assignment in (
        (Source.PROLIFIC, '=HYPERLINK("http://x.example")', ""),
        (Source.MTURK, "+SUM(A1)", "@A2"),
    ):
        rater_make(
            study,
            pool,
            source=source,
            worker=worker,
            status=Status.COMPLETED,
            qualification=None,
            task=[(3, 0)],
            session_id=assignment,
        )
    assert payment_csv(study=study, kind="prolific-bonuses.csv") == (
        '"\'=HYPERLINK(""http://x.example"")",0.06\n'
    )
    mturk = payment_csv(study=study, kind="mturk-bonuses.csv").split("\r\n")[1]
    assert mturk.startswith("'+SUM(A1),'@A2,0.06,")
    approvals = payment_csv(study=study, kind="approvals.csv").split("\r\n")[1:3]
    assert approvals[0].startswith("prolific,\"'=HYPERLINK(")
    assert approvals[1].startswith("mturk,'+SUM(A1),STUDY9,'@A2,completed,")


def test_each_download_sums_its_rows(study):
    summaries = {s.download.name: s for s in payment_downloads_summary(pays=rater_pay_list(study))}
    assert {name: (s.rows, s.amount) for name, s in summaries.items()} == {
        "approvals.csv": (4, "3.00"),
        "prolific-bonuses.csv": (1, "0.74"),
        "mturk-bonuses.csv": (1, "0.70"),
    }


def test_a_download_is_an_attachment_no_cache_keeps(study):
    response = payment_download_response(study=study, kind="approvals.csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="hype-faces-pay-approvals.csv"'
    )
    assert response["Cache-Control"] == "private, no-store"
    assert response.content.decode() == payment_csv(study=study, kind="approvals.csv")


def test_an_unknown_download_is_not_found(study):
    with pytest.raises(Http404):
        payment_download_response(study=study, kind="trials.csv")


# --- The data dictionary --------------------------------------------------------------------


def test_the_dictionary_lists_each_downloads_columns_in_order():
    text = (REPO_ROOT / "docs" / "data-dictionary.md").read_text()
    columns = {
        "approvals.csv": APPROVAL_COLUMNS,
        "prolific-bonuses.csv": PROLIFIC_BONUS_COLUMNS,
        "mturk-bonuses.csv": MTURK_BONUS_COLUMNS,
    }
    assert set(columns) == set(PAYMENT_DOWNLOAD_KINDS)
    for download in PAYMENT_DOWNLOADS:
        section = re.split(r"\n#+ ", text.split(f"### `{download.name}`\n", 1)[1])[0]
        documented = re.findall(r"^\| `([^`]+)` \|", section, re.M)
        assert documented == [c.name for c in columns[download.name]], download.name

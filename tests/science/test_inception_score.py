"""The Inception Score on answers known by hand: uniform predictions score 1, k classes each
predicted with certainty by an equal share of the images score k (split by split), a two-class
case worked on paper, splits taken in order; and input that is not probabilities is refused."""

import math

import numpy as np
import pytest

from hype.science.metrics import DegenerateInput, InceptionScore, inception_score


def one_hot(classes: list[int], width: int) -> np.ndarray:
    return np.eye(width)[classes]


def test_uniform_predictions_score_one():
    score = inception_score(np.full((50, 1008), 1 / 1008), splits=10)
    assert score.mean == pytest.approx(1.0, abs=1e-12)
    assert score.sd == pytest.approx(0.0, abs=1e-12)
    assert (score.splits, score.n) == (10, 50)


def test_k_equally_used_certain_classes_score_k_in_every_split():
    # 40 images cycling through classes 0-3 of 10: each split of 4 holds each class once.
    score = inception_score(one_hot([i % 4 for i in range(40)], 10), splits=10)
    assert score == InceptionScore(mean=pytest.approx(4.0), sd=pytest.approx(0.0), splits=10, n=40)


def test_splits_are_consecutive_rows_and_the_sd_is_over_splits_with_n_in_the_denominator():
    # First half: two classes used equally (IS 2); second half: four (IS 4).
    rows = one_hot([0, 1, 0, 1] + [0, 1, 2, 3], 5)
    score = inception_score(rows, splits=2)
    assert score.mean == pytest.approx(3.0) and score.sd == pytest.approx(1.0)
    # As one split, the eight images use class 0 and 1 three times, 2 and 3 once: exp(H(y)).
    marginal = np.array([3, 3, 1, 1]) / 8
    alone = inception_score(rows, splits=1)
    assert alone.mean == pytest.approx(math.exp(-(marginal * np.log(marginal)).sum()))
    assert alone.sd is None
    # Reordered so that each half uses classes (0, 0, 1, 2) and (1, 0, 1, 3): both score
    # 2^(3/2), so the order of the rows decides the splits: nothing is shuffled inside.
    reordered = inception_score(rows[[0, 4, 5, 6, 1, 2, 3, 7]], splits=2)
    assert reordered.mean == pytest.approx(2**1.5) and reordered.sd == pytest.approx(0.0)


def test_a_two_class_case_worked_by_hand():
    # p(y|x) = (1, 0) and (1/2, 1/2): p(y) = (3/4, 1/4);
    # KL = ln(4/3) and 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3); the mean is 3/4 ln(4/3).
    score = inception_score([[1.0, 0.0], [0.5, 0.5]], splits=1)
    assert score.mean == pytest.approx((4 / 3) ** 0.75, rel=1e-12)
    # (0.9, 0.1) and (0.1, 0.9): p(y) = (1/2, 1/2), each KL = 0.9 ln 1.8 + 0.1 ln 0.2.
    symmetric = inception_score([[0.9, 0.1], [0.1, 0.9]], splits=1)
    assert symmetric.mean == pytest.approx(math.exp(0.9 * math.log(1.8) + 0.1 * math.log(0.2)))


def test_it_equals_the_formula_written_out_on_random_softmax_rows():
    rng = np.random.default_rng(5)
    logits = rng.normal(0, 3, (103, 1008))
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = []
    for i in range(10):
        part = p[i * 103 // 10 : (i + 1) * 103 // 10]
        kl = (part * (np.log(part) - np.log(part.mean(axis=0)))).sum(axis=1).mean()
        expected.append(math.exp(kl))
    score = inception_score(p, splits=10)
    assert score.mean == pytest.approx(np.mean(expected), rel=1e-12)
    assert score.sd == pytest.approx(np.std(expected), rel=1e-9)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([[0.5, 0.6], [0.5, 0.5]], "sum to 1 in every row: row 0 sums to 1.1"),
        ([[1.5, -0.5], [0.5, 0.5]], "negative"),
        ([[float("nan"), 1.0], [0.5, 0.5]], "NaN"),
        ([0.5, 0.5], "2-d array"),
        ([[1.0], [1.0]], "at least 2 classes"),
    ],
)
def test_what_is_not_probabilities_is_refused_with_the_reason(rows, message):
    with pytest.raises(DegenerateInput, match=message):
        inception_score(rows, splits=1)


def test_fewer_images_than_splits_are_refused():
    with pytest.raises(DegenerateInput, match="10 splits needs at least 10 images, got 9"):
        inception_score(np.full((9, 3), 1 / 3), splits=10)
    with pytest.raises(ValueError, match="splits must be a positive integer"):
        inception_score(np.full((9, 3), 1 / 3), splits=0)

"""The figures trials are ranked and ensembles chosen by, checked against scikit-learn's own
implementations (an independent source), on a table of edge cases and on any labels (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as sk
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight

from tuner.training.metrics import (balanced_accuracy, balanced_log_loss, class_accuracy, confusion_matrix,
                                    predicted_counts)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # scikit-learn on labels a case lacks


def _probs(predicted: list[int], n_classes: int, confidence: float = 0.7) -> np.ndarray:
    probs = np.full((len(predicted), n_classes), (1 - confidence) / (n_classes - 1))
    probs[np.arange(len(predicted)), predicted] = confidence
    return probs


CASES = [  # (true labels, predicted labels, classes)
    ([0, 0, 0, 0, 0, 0, 1, 2], [0, 0, 0, 0, 0, 0, 0, 0], 3),  # a majority-only model: 75% accuracy
    ([0, 1, 2, 0, 1, 2], [0, 1, 2, 0, 1, 2], 3),  # perfect
    ([0, 0, 1, 1], [1, 1, 0, 0], 2),  # all wrong
    ([0, 0, 0, 1], [0, 1, 0, 1], 4),  # classes 2 and 3 have no label: left out of the mean
]


@pytest.mark.parametrize("y, predicted, n", CASES)
def test_per_class_and_balanced_figures_match_scikit_learn(y, predicted, n):
    y, probs = np.array(y), _probs(predicted, n)
    present = sorted(set(y.tolist()))
    assert balanced_accuracy(probs, y) == pytest.approx(sk.balanced_accuracy_score(y, predicted))
    recalls = sk.recall_score(y, predicted, labels=present, average=None, zero_division=0)
    assert [a for a in class_accuracy(probs, y) if a is not None] == pytest.approx(recalls.tolist())
    assert [c for c, a in enumerate(class_accuracy(probs, y)) if a is None] == [c for c in range(n) if c not in present]
    assert confusion_matrix(probs, y) == sk.confusion_matrix(y, predicted, labels=list(range(n))).tolist()
    assert predicted_counts(probs) == np.bincount(predicted, minlength=n).tolist()


def test_a_model_that_never_predicts_the_small_classes_is_exposed():
    y = np.array([0] * 6 + [1, 2])
    probs = _probs([0] * 8, 3)
    assert float(np.mean(probs.argmax(1) == y)) == 0.75
    assert balanced_accuracy(probs, y) == pytest.approx(1 / 3)
    assert predicted_counts(probs) == [8, 0, 0]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(2, 6).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.integers(0, n - 1), min_size=2, max_size=40),
    st.randoms(use_true_random=False))))
def test_any_labels_and_probabilities_match_scikit_learn(case):
    n, labels, rnd = case
    y = np.array(labels)
    probs = np.array([[rnd.random() + 1e-3 for _ in range(n)] for _ in labels])
    probs /= probs.sum(1, keepdims=True)
    predicted = probs.argmax(1)
    assert balanced_accuracy(probs, y) == pytest.approx(sk.balanced_accuracy_score(y, predicted))
    assert confusion_matrix(probs, y) == sk.confusion_matrix(y, predicted, labels=list(range(n))).tolist()
    weights = compute_sample_weight("balanced", y)  # the balanced log loss is the class-weighted mean
    assert balanced_log_loss(probs, y) == pytest.approx(sk.log_loss(y, probs, sample_weight=weights, labels=list(range(n))))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.integers(2, 6).flatmap(lambda n: st.tuples(st.just(n), st.lists(st.integers(0, n - 1), min_size=1, max_size=60))))
def test_balanced_class_weights_are_scikit_learns(case):
    from tuner.training.fit import balanced_weights

    n, labels = case
    y = np.array(labels)
    present = np.unique(y)
    expected = compute_class_weight("balanced", classes=present, y=y)
    weights = balanced_weights(y, n)
    assert weights[present] == pytest.approx(expected)
    assert (weights[np.setdiff1d(np.arange(n), present)] == 0).all()

"""GridSearchCV, RandomizedSearchCV and cross_val_score on labelled images."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import (
    GridSearchCV,
    RandomizedSearchCV,
    StratifiedKFold,
    cross_val_score,
)

from skvqad import VQVAEAnomalyDetector


def test_training_folds_use_inliers_only_and_validation_uses_decision_function(
    labelled, tiny_params, trainings
):
    X, y = labelled
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    det = VQVAEAnomalyDetector(**tiny_params)
    scores = cross_val_score(det, X, y, cv=cv, scoring="roc_auc")
    expected, inlier_counts = [], []
    for train, test in cv.split(X, y):
        inlier_counts.append(int((y[train] == 1).sum()))
        fitted = VQVAEAnomalyDetector(**tiny_params).fit(X[train], y[train])
        expected.append(roc_auc_score(y[test], fitted.decision_function(X[test])))
    assert trainings[:3] == inlier_counts
    np.testing.assert_allclose(scores, expected)


def test_grid_search_over_codebook_and_radius(labelled, tiny_params, trainings, tmp_path):
    X, y = labelled
    grid = {"n_embeddings": [4, 8], "dilation_radius": [0, 1, 2]}
    cv = StratifiedKFold(n_splits=2, shuffle=True, random_state=0)
    search = GridSearchCV(
        VQVAEAnomalyDetector(**tiny_params, memory=tmp_path), grid, scoring="roc_auc", cv=cv
    ).fit(X, y)
    # 2 codebook sizes x 2 folds, plus the refit on all inliers; not 6 per fold.
    assert len(trainings) == 2 * 2 + 1
    assert search.best_params_["n_embeddings"] in (4, 8)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_estimator_.predict(X).shape == (60,)

    # Without memory, every radius trains its own network in every fold.
    trainings.clear()
    radii = {"n_embeddings": [8], "dilation_radius": [0, 1, 2]}
    GridSearchCV(VQVAEAnomalyDetector(**tiny_params), radii, scoring="roc_auc", cv=cv).fit(X, y)
    assert len(trainings) == 2 * 3 + 1


def test_cached_network_gives_the_same_scores(labelled, tiny_params, trainings, tmp_path):
    X, y = labelled
    a = VQVAEAnomalyDetector(**tiny_params, memory=str(tmp_path)).fit(X, y)
    scoring = dict(dilation_radius=0, alignment="relative", ssim_constants=(0.01, 0.03))
    b = VQVAEAnomalyDetector(**tiny_params, memory=str(tmp_path), **scoring).fit(X, y)
    assert len(trainings) == 1
    uncached = VQVAEAnomalyDetector(**tiny_params, **scoring).fit(X, y)
    np.testing.assert_array_equal(b.score_samples(X), uncached.score_samples(X))
    assert a.offset_ != b.offset_  # post-processing still applies
    VQVAEAnomalyDetector(**tiny_params, memory=str(tmp_path), lr=2e-3).fit(X, y)
    VQVAEAnomalyDetector(**tiny_params, memory=str(tmp_path)).fit(X[:40], y[:40])
    # uncached, new weights parameter, new data: each trained again
    assert len(trainings) == 4


def test_memory_without_seed_warns(labelled, tiny_params, tmp_path):
    X, y = labelled
    tiny_params["random_state"] = None
    with pytest.warns(UserWarning, match="never reused"):
        VQVAEAnomalyDetector(**tiny_params, memory=tmp_path).fit(X, y)


def test_randomized_search(labelled, tiny_params, tmp_path):
    X, y = labelled
    search = RandomizedSearchCV(
        VQVAEAnomalyDetector(**tiny_params, memory=tmp_path),
        {"dilation_radius": [0, 1, 2, 3], "score_map": ["ssim", "ssim+am"]},
        n_iter=3, scoring="roc_auc", cv=StratifiedKFold(2), random_state=0,
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 3
    assert 0.0 <= search.best_score_ <= 1.0

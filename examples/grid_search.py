"""Model selection: GridSearchCV over codebook size and dilation radius
=====================================================================

The detector trains on normal images only, but it can be tuned on labelled
data with scikit-learn's tools: with ``y = 1`` for normal and ``y = -1`` for
anomalous images, each training fold trains on its normal images only and
each validation fold is scored with ``decision_function`` by the
``"roc_auc"`` scorer.

``dilation_radius`` (like ``score_map``, ``ssim_window``,
``channel_reduction`` and ``contamination``) changes no weights. With
``memory`` set, the trained networks are cached by the parameters that do
change them and by the training images, so a grid of 2 codebook sizes x 3
radii trains 2 networks per fold instead of 6. This script runs the search
with and without the cache and counts the trainings.

Run with::

    python examples/grid_search.py
"""

import tempfile
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import (
    GridSearchCV,
    RandomizedSearchCV,
    StratifiedKFold,
    cross_val_score,
)

from skvqad import VQVAEAnomalyDetector
from skvqad.net import VQVAENet

# Digit 3 is normal (y = 1); a sample of the other digits is anomalous (y = -1).
digits = load_digits()
X = (digits.images / 16.0).astype(np.float32)
rng = np.random.default_rng(0)
normal = np.flatnonzero(digits.target == 3)
anomalous = rng.choice(np.flatnonzero(digits.target != 3), size=60, replace=False)
idx = np.concatenate([normal, anomalous])
X, y = X[idx], np.where(digits.target[idx] == 3, 1, -1)

base = dict(embedding_dim=16, hidden_channels=32, n_downsampling=1, ssim_window=3,
            max_epochs=40, batch_size=32, random_state=0)
grid = {"n_embeddings": [16, 64], "dilation_radius": [0, 1, 2]}
cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)

# Count the networks trained, by wrapping VQVAENet.fit.
trainings = []
_fit = VQVAENet.fit
VQVAENet.fit = lambda self, *a, **k: trainings.append(1) or _fit(self, *a, **k)

results = {}
for label, memory in [("without cache", None), ("with memory", tempfile.mkdtemp())]:
    trainings.clear()
    start = time.perf_counter()
    search = GridSearchCV(VQVAEAnomalyDetector(**base, memory=memory), grid,
                          scoring="roc_auc", cv=cv).fit(X, y)
    results[label] = (len(trainings), time.perf_counter() - start, search)
    print(f"{label}: {len(trainings)} networks trained, {results[label][1]:.1f} s; "
          f"best {search.best_params_}, AUROC {search.best_score_:.3f}")

(n0, t0, s0), (n1, t1, s1) = results["without cache"], results["with memory"]
assert np.allclose(s0.cv_results_["mean_test_score"], s1.cv_results_["mean_test_score"])
print(f"\nThe cache trained {n1} networks instead of {n0} ({n0 / n1:.1f}x fewer; "
      f"3 folds x 2 codebook sizes + 1 refit) and took {t1:.1f} s instead of {t0:.1f} s, "
      "for the same cross-validation scores.")

print("\nmean AUROC over the 3 folds:")
for params, score in zip(s1.cv_results_["params"], s1.cv_results_["mean_test_score"], strict=True):
    print(f"  {params}: {score:.3f}")

# The same scorer works with RandomizedSearchCV and cross_val_score.
memory = results["with memory"][2].estimator.memory
random_search = RandomizedSearchCV(
    VQVAEAnomalyDetector(**base, memory=memory),
    {"n_embeddings": [16, 64], "dilation_radius": [0, 1, 2, 3], "score_map": ["ssim", "ssim+am"]},
    n_iter=4, scoring="roc_auc", cv=cv, random_state=0,
).fit(X, y)
print(f"\nRandomizedSearchCV best: {random_search.best_params_}, AUROC {random_search.best_score_:.3f}")
scores = cross_val_score(VQVAEAnomalyDetector(**base, **s1.best_params_, memory=memory), X, y,
                         scoring="roc_auc", cv=cv)
print(f"cross_val_score of the best grid point: {np.round(scores, 3)}")
VQVAENet.fit = _fit

"""A grid search that runs on a Dask cluster through joblib."""

import numpy as np
import pytest
from conftest import make_stripes
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skvqad import VQVAEAnomalyDetector

distributed = pytest.importorskip("distributed")
joblib = pytest.importorskip("joblib")


def test_grid_search_on_a_local_dask_cluster(tiny_params, tmp_path):
    X = make_stripes(40, seed=5)
    y = np.ones(40, dtype=int)
    y[::4] = -1
    X[y == -1, 4:12, 4:12] = 1.0
    grid = {"n_embeddings": [4, 8], "dilation_radius": [0, 1]}
    cv = StratifiedKFold(2, shuffle=True, random_state=0)
    serial = GridSearchCV(VQVAEAnomalyDetector(**tiny_params), grid, scoring="roc_auc", cv=cv).fit(X, y)

    # Two single-threaded worker processes, as one would start one per GPU.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        with joblib.parallel_config(backend="dask"), distributed.get_task_stream(client) as tasks:
            search = GridSearchCV(
                VQVAEAnomalyDetector(**tiny_params, memory=tmp_path), grid,
                scoring="roc_auc", cv=cv, n_jobs=-1,
            ).fit(X, y)
        workers = client.run(lambda: __import__("os").getpid())
    assert len(workers) == 2
    # The 4 candidates x 2 folds ran as tasks on the cluster's worker processes.
    assert len(tasks.data) >= 1
    assert {t["worker"] for t in tasks.data} <= set(workers)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               serial.cv_results_["mean_test_score"])
    assert search.best_params_ == serial.best_params_

"""A grid search that runs on a Dask cluster through joblib."""

import numpy as np
import pytest
from conftest import make_stripes
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skvqad import VQVAEAnomalyDetector

# A local cluster starts two processes that import torch: run on purpose and by CI
# (``python -m pytest -m slow``), not in the default suite.
pytestmark = pytest.mark.slow

distributed = pytest.importorskip("distributed")
joblib = pytest.importorskip("joblib")


@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes, as one would start one per GPU; shared by
    the tests of this module (each start imports torch in two processes)."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def test_grid_search_on_a_local_dask_cluster(tiny_params, tmp_path, client):
    X = make_stripes(40, seed=5)
    y = np.ones(40, dtype=int)
    y[::4] = -1
    X[y == -1, 4:12, 4:12] = 1.0
    grid = {"n_embeddings": [4, 8], "dilation_radius": [0, 1]}
    cv = StratifiedKFold(2, shuffle=True, random_state=0)
    serial = GridSearchCV(VQVAEAnomalyDetector(**tiny_params), grid, scoring="roc_auc", cv=cv).fit(X, y)

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


def test_scoring_a_dask_array_on_a_local_cluster_equals_local_scores(tiny_params, client):
    import dask.array as da

    from skvqad.scaling import score_samples_dask

    X = make_stripes(50, seed=2)
    det = VQVAEAnomalyDetector(**tiny_params).fit(X)
    images = da.from_array(X, chunks=(7, 8, 16))  # chunks that split images, too
    lazy = score_samples_dask(det, images)
    # The detector is one key of the graph, which every scoring task depends on.
    graph = dict(lazy.__dask_graph__())
    holders = [k for k, v in graph.items() if _holds(v, det)]
    assert len(holders) == 1 and lazy.numblocks == (8,)
    with distributed.get_task_stream(client) as tasks:
        scores = lazy.compute()
        labels = score_samples_dask(det, images, method="predict").compute()
    workers = set(client.run(lambda: __import__("os").getpid()))
    assert {t["worker"] for t in tasks.data} <= workers
    # Equal up to float32 rounding: other batch sizes and thread counts pick other kernels.
    np.testing.assert_allclose(scores, det.score_samples(X), rtol=1e-4)
    clear = np.abs(det.decision_function(X)) > 1e-4
    np.testing.assert_array_equal(labels[clear], det.predict(X)[clear])
    # A NumPy array (or memmap) is chunked by batch_size.
    assert score_samples_dask(det, X).numblocks == (2,)
    with pytest.raises(ValueError, match="method must be one of"):
        score_samples_dask(det, X, method="fit")


def _holds(value, obj):
    """Whether a graph value is (or wraps) ``obj``."""
    return value is obj or getattr(value, "value", None) is obj

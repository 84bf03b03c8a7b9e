"""The pixel baselines against brute-force NumPy references."""

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from skvqad.baselines import KNNDistance, PCAReconstructionError, flatten_images, pixel_baselines


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(60, 7)), rng.normal(size=(15, 7)) * 2


def test_knn_distance_is_the_kth_nearest_training_distance(data):
    train, test = data
    knn = KNNDistance(n_neighbors=3).fit(train)
    dist = np.sqrt(((test[:, None] - train[None]) ** 2).sum(-1))
    np.testing.assert_allclose(knn.score_samples(test), -np.sort(dist, axis=1)[:, 2])
    # offset_: the training samples scored as score_samples scores them.
    self_dist = np.sqrt(((train[:, None] - train[None]) ** 2).sum(-1))
    assert knn.offset_ == pytest.approx(np.percentile(-np.sort(self_dist, axis=1)[:, 2], 1))
    np.testing.assert_array_equal(knn.predict(test), np.where(knn.score_samples(test) < knn.offset_, -1, 1))


def test_knn_needs_more_samples_than_neighbours():
    with pytest.raises(ValueError, match="more training samples than n_neighbors=5"):
        KNNDistance().fit(np.zeros((5, 2)))


def test_pca_error_is_the_squared_residual_of_the_kept_components(data):
    train, test = data
    pca = PCAReconstructionError(n_components=0.8).fit(train)
    mean = train.mean(0)
    _, s, vt = np.linalg.svd(train - mean, full_matrices=False)
    explained = np.cumsum(s**2) / (s**2).sum()
    k = int(np.searchsorted(explained, 0.8) + 1)
    assert pca.pca_.n_components_ == k
    proj = (test - mean) @ vt[:k].T @ vt[:k] + mean
    np.testing.assert_allclose(pca.score_samples(test), -((test - proj) ** 2).sum(1), rtol=1e-8)
    assert pca.offset_ == pytest.approx(np.percentile(pca.score_samples(train), 1))


def test_pixel_baselines_flatten_images_as_the_detector_reads_them():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(40, 4, 5, 3), dtype=np.uint8)
    flat = flatten_images(images)
    assert flat.shape == (40, 60) and flat.dtype == np.float32
    np.testing.assert_allclose(flat, images.reshape(40, -1) / 255.0, rtol=1e-6)
    assert not np.shares_memory(flat, images)
    models = pixel_baselines(random_state=0)
    assert list(models) == ["knn", "pca", "iforest"]
    got = models["iforest"].fit(images).score_samples(images[:5])
    want = IsolationForest(random_state=0).fit(flat).score_samples(flat[:5])
    np.testing.assert_allclose(got, want)
    want = KNNDistance().fit(flat).score_samples(flat[:5])
    np.testing.assert_allclose(models["knn"].fit(images).score_samples(images[:5]), want)


@pytest.mark.parametrize("contamination", [0.0, 0.6, "0.1", True])
def test_baselines_refuse_the_contamination_the_detector_refuses(data, contamination):
    """One constraint (skvqad.thresholds.CONTAMINATION_CONSTRAINT) for all three estimators."""
    from sklearn.utils._param_validation import InvalidParameterError

    from skvqad import VQVAEAnomalyDetector

    for est in (KNNDistance(contamination=contamination),
                PCAReconstructionError(contamination=contamination),
                VQVAEAnomalyDetector(contamination=contamination, max_epochs=1, device="cpu")):
        with pytest.raises(InvalidParameterError, match="'contamination' parameter"):
            est.fit(data[0])


def test_pca_residual_maps_match_a_numpy_projection():
    """Per-pixel squared residual of a rank-k PCA reconstruction, channels averaged."""
    from skvqad.baselines import pca_residual_maps

    rng = np.random.default_rng(3)
    train = rng.random((30, 5, 4, 3)).astype(np.float32)
    test = rng.random((6, 5, 4, 3)).astype(np.float32)
    flat = train.reshape(30, -1).astype(np.float64)
    mean = flat.mean(axis=0)
    _, _, vt = np.linalg.svd(flat - mean, full_matrices=False)
    basis = vt[:4]
    centred = test.reshape(6, -1) - mean
    residual = (centred - centred @ basis.T @ basis) ** 2
    want = residual.reshape(6, 5, 4, 3).mean(axis=-1)
    got = pca_residual_maps(train, test, n_components=4)
    assert got.shape == (6, 5, 4)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-6)
    # uint8 images are read as intensities / 255, as the detector reads them.
    np.testing.assert_allclose(
        pca_residual_maps((train * 255).round().astype(np.uint8),
                          (test * 255).round().astype(np.uint8), n_components=4),
        want, atol=1e-2)
    for bad in (test[:, :4], test.transpose(0, 2, 1, 3), test.reshape(6, -1)):
        with pytest.raises(ValueError, match="images of one shape"):
            pca_residual_maps(train, bad)

"""The code prior and the fused scores, pinned against NumPy references."""

import pickle

import joblib
import numpy as np
import pytest
import torch
from conftest import TINY
from scipy import ndimage
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skvqad import VQVAEAnomalyDetector
from skvqad.maps import code_log_prior, code_prior_map, leave_one_out_prior_map
from skvqad.thresholds import offset_from_scores


# --------------------------------------------------------------- references
def numpy_log_prior(counts, smoothing, radius):
    """log p(k | p) with the counts summed over the clipped square around p, by loops."""
    h, w, m = counts.shape
    out = np.empty((h, w, m))
    for i in range(h):
        for j in range(w):
            block = counts[max(0, i - radius):i + radius + 1, max(0, j - radius):j + radius + 1]
            pooled = block.reshape(-1, m).sum(0).astype(np.float64)
            out[i, j] = np.log((pooled + smoothing) / (pooled.sum() + m * smoothing))
    return out


def numpy_counts(indices, m):
    counts = np.zeros((*indices.shape[1:], m), dtype=np.int64)
    for image in indices:
        for (i, j), k in np.ndenumerate(image):
            counts[i, j, k] += 1
    return counts


def random_codes(n=12, h=5, w=6, m=7, seed=0):
    """Codes with a position-dependent preference, so that the tables differ by position."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, m, size=(h, w))
    noise = rng.integers(0, m, size=(n, h, w))
    return np.where(rng.random((n, h, w)) < 0.6, base, noise)


@pytest.mark.parametrize("radius", [0, 1, 2, 10])
@pytest.mark.parametrize("smoothing", [0.5, 0.01, 3.0])
def test_code_log_prior_matches_numpy(radius, smoothing):
    codes = random_codes()
    counts = numpy_counts(codes, 7)
    got = code_log_prior(torch.from_numpy(counts), smoothing=smoothing, radius=radius)
    np.testing.assert_allclose(got.numpy(), numpy_log_prior(counts, smoothing, radius), rtol=1e-6)
    np.testing.assert_allclose(got.exp().sum(-1).numpy(), 1.0, rtol=1e-5)
    nll = code_prior_map(torch.from_numpy(codes), got).numpy()
    want = -numpy_log_prior(counts, smoothing, radius)[
        np.arange(5)[:, None], np.arange(6)[None, :], codes]
    np.testing.assert_allclose(nll, want, rtol=1e-6)


@pytest.mark.parametrize("radius", [0, 1, 3])
def test_leave_one_out_equals_recounting_without_the_image(radius):
    codes = random_codes(n=9)
    counts = numpy_counts(codes, 7)
    got = leave_one_out_prior_map(torch.from_numpy(codes), torch.from_numpy(counts),
                                  smoothing=0.5, radius=radius).numpy()
    for i, image in enumerate(codes):
        rest = numpy_counts(np.delete(codes, i, axis=0), 7)
        table = numpy_log_prior(rest, 0.5, radius)
        want = -table[np.arange(5)[:, None], np.arange(6)[None, :], image]
        np.testing.assert_allclose(got[i], want, rtol=1e-6)


def test_prior_parameters_are_checked():
    counts = torch.ones((2, 2, 3), dtype=torch.int64)
    for kwargs in ({"smoothing": 0}, {"smoothing": float("nan")}, {"radius": -1}, {"radius": 1.5}):
        with pytest.raises(ValueError, match="smoothing|radius"):
            code_log_prior(counts, **kwargs)


# ----------------------------------------------------------------- detector
@pytest.fixture(scope="module")
def textures():
    """8 x 8 images of 4 kinds (stripes, checks, flat, noise): several codes per position."""
    rng = np.random.default_rng(0)
    rows, cols = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    kinds = [(rows // 2) % 2, ((rows // 2) + (cols // 2)) % 2, np.zeros((8, 8)), None]
    images = []
    for i in range(48):
        kind = kinds[i % 4]
        image = rng.random((8, 8)) if kind is None else 0.2 + 0.6 * kind
        images.append(np.clip(image + rng.normal(0, 0.03, (8, 8)), 0, 1))
    return np.asarray(images, dtype=np.float32)


@pytest.fixture(scope="module")
def detector(textures):
    return VQVAEAnomalyDetector(**dict(TINY, max_epochs=3, batch_size=16, n_downsampling=1)).fit(
        textures)


def network_codes(detector, X):
    """The codes the network picks for float images X (n, H, W), by its forward pass."""
    net = detector.net_
    net.module_.eval()
    with torch.no_grad():
        return net.module_(torch.from_numpy(X[:, None])).indices.numpy()


def test_fit_counts_the_codes_of_the_training_images(detector, textures):
    codes = network_codes(detector, textures)
    assert len(np.unique(codes)) > 1
    np.testing.assert_array_equal(detector.code_counts_, numpy_counts(codes, 8))
    assert detector.code_counts_.dtype == np.int64 and detector.code_counts_.shape == (4, 4, 8)


@pytest.mark.parametrize("dilation", [0, 1])
def test_prior_map_is_the_upsampled_dilated_nll_of_the_codes(detector, textures, dilation):
    X = textures[:10]
    codes = network_codes(detector, X)
    nll = -numpy_log_prior(detector.code_counts_, 0.5, 0)[
        np.arange(4)[:, None], np.arange(4)[None, :], codes]
    want = np.stack([ndimage.grey_dilation(np.kron(m, np.ones((2, 2))), footprint=np.ones((3, 3)))
                     if dilation else np.kron(m, np.ones((2, 2))) for m in nll])
    detector.set_params(score_map="prior", dilation_radius=dilation)
    try:
        maps = detector.anomaly_map(X)
        np.testing.assert_allclose(maps, want, rtol=1e-5)
        np.testing.assert_allclose(detector.score_samples(X), -maps.mean(axis=(1, 2)), rtol=1e-5)
    finally:
        detector.set_params(score_map="ssim+am", dilation_radius=2)


def test_calibration_scores_training_images_with_their_own_codes_left_out(detector, textures):
    codes = network_codes(detector, textures)
    loo = leave_one_out_prior_map(torch.from_numpy(codes), torch.from_numpy(detector.code_counts_))
    # dilation_radius=2 on the 8 x 8 upsampled maps of a 4 x 4 grid, then the mean.
    up = np.stack([ndimage.grey_dilation(np.kron(m, np.ones((2, 2))), footprint=np.ones((5, 5)))
                   for m in loo.numpy()])
    anomaly = up.mean(axis=(1, 2))
    mean, std = detector.score_calibration_["prior"]
    assert mean == pytest.approx(anomaly.mean(), rel=1e-6)
    assert std == pytest.approx(anomaly.std(), rel=1e-5)
    # Scored as new images, the training images look more usual than left out.
    assert -detector.set_params(score_map="prior").score_samples(textures).mean() < mean
    detector.set_params(score_map="ssim+am")
    for name in ("ssim", "am", "ssim+am"):
        a = -detector.score_samples_multi(textures, [{"score_map": name}])[0]
        assert detector.score_calibration_[name] == pytest.approx((a.mean(), a.std()), rel=1e-6)
    assert detector.calibration_params_ == {
        "alignment": "squared", "ssim_window": 11, "ssim_sigma": 1.5, "ssim_constants": None,
        "channel_reduction": "mean", "dilation_radius": 2, "ssim_dilation_radius": 0,
        "prior_smoothing": 0.5, "prior_radius": 0, "score_pooling": "mean"}


def test_offset_of_the_paper_maps_is_unchanged_and_the_priors_uses_left_out_scores(textures):
    params = dict(TINY, max_epochs=3, batch_size=16, n_downsampling=1)
    paper = VQVAEAnomalyDetector(**params).fit(textures)
    assert paper.offset_ == offset_from_scores(paper.score_samples(textures), "auto")
    prior = VQVAEAnomalyDetector(**params, score_map="prior", contamination=0.25).fit(textures)
    np.testing.assert_array_equal(paper.code_counts_, prior.code_counts_)
    mean, std = prior.score_calibration_["prior"]
    as_new = prior.score_samples(textures)
    assert prior.offset_ != offset_from_scores(as_new, 0.25)
    assert -mean < as_new.mean()


@pytest.mark.parametrize("pooling", ["mean", "max", 0.9])
def test_fused_score_is_the_highest_standardised_score(detector, textures, pooling):
    X = textures[::3]
    detector.set_params(score_pooling=pooling)
    try:
        detector.refit_threshold(textures)  # calibrates under this pooling
        parts = detector.score_samples_multi(X, {"am": {"score_map": "am"},
                                                 "prior": {"score_map": "prior"},
                                                 "fused": {"score_map": ("am", "prior")}})
        z = [(-parts[n] - detector.score_calibration_[n][0]) / detector.score_calibration_[n][1]
             for n in ("am", "prior")]
        np.testing.assert_allclose(parts["fused"], -np.maximum(*z), rtol=1e-12)
        detector.set_params(score_map=["am", "prior"])  # a list works as well
        maps = detector.anomaly_map(X)
        pooled = {"mean": maps.mean(axis=(1, 2)), "max": maps.max(axis=(1, 2))}.get(
            pooling, np.quantile(maps.reshape(len(X), -1), 0.9, axis=1) if pooling == 0.9 else None)
        np.testing.assert_allclose(-pooled, detector.score_samples(X), rtol=1e-5, atol=1e-5)
        # Each image's map is the standardised map of the one that sets its score.
        am = detector.set_params(score_map="am").anomaly_map(X)
        first = z[0] >= z[1]
        mean, std = detector.score_calibration_["am"]
        np.testing.assert_allclose(maps[first], (am[first] - mean) / std, rtol=1e-4, atol=1e-5)
    finally:
        detector.set_params(score_map="ssim+am", score_pooling="mean").refit_threshold(textures)


def test_fused_offset_is_the_contamination_percentile_of_the_fused_training_scores(textures):
    det = VQVAEAnomalyDetector(**dict(TINY, max_epochs=3, batch_size=16, n_downsampling=1),
                               score_map=("ssim", "prior"), contamination=0.25).fit(textures)
    assert set(det.score_calibration_) == {"ssim", "am", "ssim+am", "prior"}
    # The training images' prior scores leave their own codes out (as in the calibration).
    codes = network_codes(det, textures)
    loo = leave_one_out_prior_map(torch.from_numpy(codes), torch.from_numpy(det.code_counts_))
    up = np.stack([ndimage.grey_dilation(np.kron(m, np.ones((2, 2))), footprint=np.ones((5, 5)))
                   for m in loo.numpy()])
    anomaly = {"ssim": -det.score_samples_multi(textures, [{"score_map": "ssim"}])[0],
               "prior": up.mean(axis=(1, 2))}
    z = [(anomaly[n] - det.score_calibration_[n][0]) / det.score_calibration_[n][1]
         for n in ("ssim", "prior")]
    assert det.offset_ == pytest.approx(offset_from_scores(-np.maximum(*z), 0.25), rel=1e-5)


def test_fused_scores_refuse_a_calibration_of_other_parameters(detector, textures):
    detector.set_params(score_map=("am", "prior"), dilation_radius=0)
    try:
        for call in (detector.score_samples, detector.anomaly_map):
            with pytest.raises(ValueError, match=r"differ in \['dilation_radius'\].*refit_threshold"):
                call(textures)
        with pytest.raises(ValueError, match="prior_radius"):
            detector.score_samples_multi(textures, [{"prior_radius": 1}])
        # One map needs no calibration; refit_threshold measures it again for the new ones.
        detector.score_samples_multi(textures, [{"score_map": "prior", "prior_radius": 1}])
        detector.refit_threshold(textures)
        assert detector.calibration_params_["dilation_radius"] == 0
        assert np.isfinite(detector.score_samples(textures)).all()
    finally:
        detector.set_params(score_map="ssim+am", dilation_radius=2).refit_threshold(textures)


@pytest.mark.parametrize("score_map", [("am",), ("am", "am"), ("am", "l2"), (), "prior+am", 3])
def test_bad_score_maps_are_refused(detector, textures, score_map):
    with pytest.raises((ValueError, TypeError), match="score_map"):
        VQVAEAnomalyDetector(**TINY, score_map=score_map).fit(textures)
    detector.set_params(score_map=score_map)
    try:
        with pytest.raises((ValueError, TypeError), match="score_map"):
            detector.score_samples(textures)
    finally:
        detector.set_params(score_map="ssim+am")


def test_prior_parameters_act_at_scoring_time(detector, textures):
    scores = detector.score_samples_multi(textures, {
        "base": {"score_map": "prior"},
        "smooth": {"score_map": "prior", "prior_smoothing": 5.0},
        "wide": {"score_map": "prior", "prior_radius": 1},
        "global": {"score_map": "prior", "prior_radius": 4}})
    assert not np.allclose(scores["base"], scores["smooth"])
    assert not np.allclose(scores["base"], scores["wide"])
    # A radius covering the grid is one table for all positions.
    codes = network_codes(detector, textures)
    freq = np.bincount(codes.ravel(), minlength=8) + 0.5
    nll = -np.log(freq / freq.sum())[codes]
    up = np.stack([ndimage.grey_dilation(np.kron(m, np.ones((2, 2))), footprint=np.ones((5, 5)))
                   for m in nll])
    np.testing.assert_allclose(scores["global"], -up.mean(axis=(1, 2)), rtol=1e-5)
    for bad in ({"prior_smoothing": 0.0}, {"prior_radius": -1}):
        with pytest.raises(ValueError, match="prior_"):
            detector.score_samples_multi(textures, [bad])


def test_model_file_pickle_and_joblib_keep_the_prior(detector, textures, tmp_path):
    detector.set_params(score_map=("ssim+am", "prior"))
    try:
        detector.save(tmp_path / "d.skvqad")
        joblib.dump(detector, tmp_path / "d.joblib")
        copies = [VQVAEAnomalyDetector.load(tmp_path / "d.skvqad"),
                  joblib.load(tmp_path / "d.joblib"), pickle.loads(pickle.dumps(detector))]
    finally:
        detector.set_params(score_map="ssim+am")
    assert copies[0].score_map == ("ssim+am", "prior")  # a tuple again, not JSON's list
    settings = {"prior": {"score_map": "prior"}, "fused": {"score_map": ("ssim+am", "prior")}}
    want = detector.score_samples_multi(textures, settings)
    for copy in copies:
        np.testing.assert_array_equal(copy.code_counts_, detector.code_counts_)
        assert copy.score_calibration_ == detector.score_calibration_
        assert copy.calibration_params_ == detector.calibration_params_
        got = copy.score_samples_multi(textures, settings)
        for key in settings:
            np.testing.assert_array_equal(got[key], want[key])


def test_detectors_fitted_before_the_prior_say_so(detector, textures):
    old = pickle.loads(pickle.dumps(detector))
    del old.code_counts_, old.score_calibration_, old.calibration_params_
    assert np.isfinite(old.score_samples(textures)).all()  # the paper's maps still work
    with pytest.raises(ValueError, match="code_counts_.*refit"):
        old.set_params(score_map="prior").score_samples(textures)
    with pytest.raises(ValueError, match="score_calibration_.*refit"):
        old.set_params(score_map=("am", "ssim")).score_samples(textures)


def test_search_over_score_map_trains_one_network(labelled, tiny_params, trainings, tmp_path):
    X, y = labelled
    cv = StratifiedKFold(n_splits=2, shuffle=True, random_state=0)
    grid = {"score_map": ["ssim+am", "prior", ("am", "prior"), ("ssim", "am", "prior")],
            "prior_radius": [0, 1]}
    search = GridSearchCV(VQVAEAnomalyDetector(**tiny_params, memory=tmp_path), grid,
                          scoring="roc_auc", cv=cv).fit(X, y)
    assert len(trainings) == 2 + 1  # one network per fold, and the refit
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_estimator_.predict(X).shape == (60,)


def test_refit_threshold_on_the_training_images_sets_what_fit_sets(textures, tmp_path):
    params = dict(TINY, max_epochs=3, batch_size=16, n_downsampling=1, contamination=0.2)
    det = VQVAEAnomalyDetector(**params).fit(textures)
    want = VQVAEAnomalyDetector(**params, score_map=("am", "prior"), dilation_radius=0).fit(textures)
    det.set_params(score_map=("am", "prior"), dilation_radius=0).refit_threshold(textures)
    assert det.score_calibration_ == want.score_calibration_ and det.offset_ == want.offset_
    # ... also after a round trip through the model file; other images are scored as new ones.
    det.save(tmp_path / "d.skvqad")
    loaded = VQVAEAnomalyDetector.load(tmp_path / "d.skvqad").refit_threshold(textures)
    assert loaded.score_calibration_ == want.score_calibration_
    loaded.refit_threshold(textures[:-1])  # not the training array: own codes count
    assert loaded.score_calibration_["prior"][0] < want.score_calibration_["prior"][0]


@pytest.mark.parametrize("score_map", ["ssim+am", ("ssim", "am")])
def test_map_scale_is_the_99th_percentile_of_the_training_maps_peaks(textures, score_map):
    det = VQVAEAnomalyDetector(**dict(TINY, max_epochs=3, batch_size=16, n_downsampling=1),
                               score_map=score_map).fit(textures)
    peaks = det.anomaly_map(textures).max(axis=(1, 2))
    assert det.map_scale_ == pytest.approx(np.quantile(peaks, 0.99), rel=1e-5)

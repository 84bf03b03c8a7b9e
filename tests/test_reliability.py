"""What a user meets when things go wrong (issue #13): each test failed before its fix."""

import warnings

import numpy as np
import pytest
import torch
from conftest import make_stripes
from skorch.callbacks import Callback

from skvqad import VQVAEAnomalyDetector
from skvqad.preprocessing import ImageResizer, IntensityScaler


class RaiseAt(Callback):
    """Raise ``exc`` at the end of epoch ``epoch``."""

    def __init__(self, exc=KeyboardInterrupt, epoch=2):
        self.exc = exc
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise self.exc()


def test_ctrl_c_during_fit_propagates_and_caches_nothing(tmp_path, stripes, tiny_params):
    det = VQVAEAnomalyDetector(**dict(tiny_params, max_epochs=6), memory=tmp_path,
                               callbacks=[RaiseAt(KeyboardInterrupt, epoch=2)])
    with pytest.raises(KeyboardInterrupt):
        det.fit(stripes)
    assert not hasattr(det, "net_")
    # joblib stores a result only for a call that returned: nothing is cached.
    assert not list(tmp_path.rglob("output.pkl"))


def test_a_failed_refit_leaves_the_detector_exactly_as_it_was(tiny_params):
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, size=(40, 6))  # tabular: fit sets feature_range_
    det = VQVAEAnomalyDetector(**tiny_params).fit(X)
    before = {k: v for k, v in vars(det).items() if k.endswith("_")}
    scores = det.score_samples(X)
    det.set_params(callbacks=[RaiseAt(RuntimeError, epoch=1)])
    with pytest.raises(RuntimeError):
        det.fit(X * 5 + 3)  # other ranges, which fit would store first
    after = {k: v for k, v in vars(det).items() if k.endswith("_")}
    assert after.keys() == before.keys()
    assert all(after[k] is before[k] for k in before)
    det.set_params(callbacks=None)
    np.testing.assert_array_equal(det.score_samples(X), scores)


@pytest.mark.parametrize("n, size, batch_size, n_downsampling", [
    (17, 8, 16, 3),    # the last batch: one image on a 1x1 latent grid
    (129, 16, 128, 4),
    (1, 8, 16, 3),     # a single training image
])
def test_any_number_of_images_trains(tiny_params, n, size, batch_size, n_downsampling):
    X = make_stripes(n, size=size)
    det = VQVAEAnomalyDetector(**dict(tiny_params, batch_size=batch_size,
                                      n_downsampling=n_downsampling)).fit(X)
    assert len(det.history_) == tiny_params["max_epochs"]
    assert np.isfinite(det.score_samples(X)).all()


def test_a_batch_of_one_value_per_channel_leaves_the_running_statistics_alone():
    from skvqad.model import BatchNorm2d

    bn = BatchNorm2d(2).train()
    bn.running_mean.fill_(0.5)
    bn.running_var.fill_(4.0)
    x = torch.tensor([1.5, -1.5]).view(1, 2, 1, 1)
    out = bn(x)
    np.testing.assert_allclose(out.detach().flatten().numpy(),
                               [(1.5 - 0.5) / np.sqrt(4 + 1e-5), (-1.5 - 0.5) / np.sqrt(4 + 1e-5)],
                               rtol=1e-6)
    assert bn.running_mean.tolist() == [0.5, 0.5] and bn.running_var.tolist() == [4.0, 4.0]
    # Two values per channel: torch's batch statistics, as before.
    x2 = torch.randn(2, 2, 1, 1)
    torch.testing.assert_close(bn(x2), torch.nn.BatchNorm2d(2).train()(x2) * 1.0)


def test_non_finite_scores_raise_instead_of_labelling_normal(stripes, tiny_params):
    det = VQVAEAnomalyDetector(**tiny_params).fit(stripes)
    with torch.no_grad():
        det.net_.module_.decoder[0].weight.fill_(float("nan"))
    for method in ("score_samples", "decision_function", "predict"):
        with pytest.raises(FloatingPointError, match="weights hold NaN"):
            getattr(det, method)(stripes)
    with pytest.raises(FloatingPointError, match="64 of 64 image scores"):
        det.score_samples_multi(stripes, [{"score_map": "ssim"}])
    # anomaly_map too (it returned NaN maps without a word).
    with pytest.raises(FloatingPointError, match=r"of 16384 map values .*weights hold NaN"):
        det.anomaly_map(stripes)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint32, np.int16])
def test_integer_images_in_8_bit_range_read_as_uint8(stripes, tiny_params, dtype):
    X8 = np.round(stripes * 255).astype(np.uint8)
    det = VQVAEAnomalyDetector(**tiny_params).fit(X8)
    Xi = X8.astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DataRangeWarning: nothing is clipped
        np.testing.assert_array_equal(det.score_samples(Xi), det.score_samples(X8))
        np.testing.assert_array_equal(
            VQVAEAnomalyDetector(**tiny_params).fit(Xi).score_samples(X8), det.score_samples(X8))


def test_integer_images_in_16_bit_range_read_as_uint16(stripes, tiny_params):
    X16 = np.round(stripes * 65535).astype(np.uint16)
    det = VQVAEAnomalyDetector(**tiny_params).fit(X16)
    np.testing.assert_array_equal(det.score_samples(X16.astype(np.int64)), det.score_samples(X16))


def test_integer_images_are_read_at_the_depth_fit_saw(stripes, tiny_params, tmp_path):
    X16 = np.round(stripes * 65535).astype(np.uint16)
    det = VQVAEAnomalyDetector(**tiny_params).fit(X16)
    assert det.integer_bits_ == 16
    # A dark batch of 16-bit images as int64 (values <= 255) is still 16-bit, not 8-bit.
    dark = X16 // 300
    assert dark.max() <= 255
    np.testing.assert_array_equal(det.score_samples(dark.astype(np.int64)), det.score_samples(dark))
    # ... also after save/load.
    det.save(tmp_path / "m.skvqad")
    loaded = VQVAEAnomalyDetector.load(tmp_path / "m.skvqad")
    assert loaded.integer_bits_ == 16
    np.testing.assert_array_equal(loaded.score_samples(dark.astype(np.int32)),
                                  det.score_samples(dark))
    # Fitted on 8-bit values, integers beyond 255 are refused, not read as 16-bit.
    det8 = VQVAEAnomalyDetector(**tiny_params).fit(np.round(stripes * 255).astype(np.int64))
    assert det8.integer_bits_ == 8
    with pytest.raises(ValueError, match=r"8-bit intensities \(0..255\), as the images fit saw"):
        det8.score_samples(dark.astype(np.int64) * 4)
    assert VQVAEAnomalyDetector(**tiny_params).fit(stripes).integer_bits_ is None
    # The image transformers keep the depth too (and keep the dtype they read).
    resizer = ImageResizer((8, 8)).fit(X16)
    assert resizer.integer_bits_ == 16
    np.testing.assert_array_equal(resizer.transform(dark.astype(np.int64)),
                                  resizer.transform(dark))
    assert ImageResizer((8, 8)).transform(dark.astype(np.int64)).dtype == np.uint8  # unfitted
    scaler = IntensityScaler(in_range="dtype").fit(X16.astype(np.int64))
    np.testing.assert_allclose(scaler.transform(dark.astype(np.int64)), dark / 65535, rtol=1e-6)
    # With the range fit saw, the depth plays no part: brighter integers are clipped as promised.
    X8 = np.round(stripes * 200).astype(np.int64)
    scaler = IntensityScaler().fit(X8)
    assert not hasattr(scaler, "integer_bits_")
    assert scaler.transform(X8 + 100).max() == 1.0


@pytest.mark.parametrize("low, high", [(-1, 250), (0, 70000)])
def test_other_integer_images_are_refused_not_clipped(stripes, tiny_params, low, high):
    X = np.round(stripes * 255).astype(np.int64)
    X[0, 0, 0], X[1, 0, 0] = low, high
    with pytest.raises(ValueError, match=f"values from {low} to {high}"):
        VQVAEAnomalyDetector(**tiny_params).fit(X)
    det = VQVAEAnomalyDetector(**tiny_params).fit(stripes)
    with pytest.raises(ValueError, match="8-bit"):
        det.score_samples(X)


def test_refit_threshold_puts_offset_back_on_the_scale_of_new_scores(stripes, tiny_params):
    det = VQVAEAnomalyDetector(**tiny_params).fit(stripes)
    fitted_offset = det.offset_
    det.set_params(score_map="ssim")
    assert det.offset_ == fitted_offset  # stale until asked
    assert det.refit_threshold(stripes) is det
    # What fit with score_map="ssim" sets: the same network (scoring changes no weights).
    want = VQVAEAnomalyDetector(**tiny_params, score_map="ssim").fit(stripes).offset_
    assert det.offset_ == want != fitted_offset
    det.refit_threshold(stripes, contamination=0.25)
    assert (det.predict(stripes) == -1).sum() == 16
    with pytest.raises(ValueError, match="'contamination' parameter"):
        det.refit_threshold(stripes, contamination=0.9)
    with pytest.raises(ValueError, match="16x16"):
        det.refit_threshold(stripes[:, :8, :8])


def test_fits_in_threads_equal_sequential_fits_and_leave_the_global_rng(tiny_params):
    """What joblib's threading backend and Dask's threaded scheduler do: fits side by side.

    Before, seeding set torch's global generator for each fit, so concurrent fits drew
    from each other's streams (scores differed by up to 0.32) and the caller's RNG state
    was not always restored.
    """
    from concurrent.futures import ThreadPoolExecutor

    X = make_stripes(64, seed=5)
    params = dict(tiny_params, max_epochs=2, batch_size=16, n_embeddings=16)
    del params["random_state"]
    want = [VQVAEAnomalyDetector(**params, random_state=seed).fit(X).score_samples(X)
            for seed in (0, 0, 1, 2)]
    torch.manual_seed(11)
    state = torch.get_rng_state()
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(
            lambda seed: VQVAEAnomalyDetector(**params, random_state=seed).fit(X).score_samples(X),
            (0, 0, 1, 2)))
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    assert torch.equal(state, torch.get_rng_state())


#: Read by Interrupt: the callback's parameters stay the same between the two fits.
INTERRUPT = {"at_epoch": None}


class Interrupt(Callback):
    """Ctrl-C at the start of epoch INTERRUPT["at_epoch"] (1-based)."""

    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) == INTERRUPT["at_epoch"]:
            raise KeyboardInterrupt


def test_a_stopped_fit_resumes_from_its_checkpoint_and_ends_as_an_unstopped_one(tmp_path,
                                                                              tiny_params):
    X = make_stripes(80, seed=2)
    params = dict(tiny_params, max_epochs=4, batch_size=16, n_embeddings=16,
                  callbacks=[Interrupt()], checkpoint_dir=tmp_path / "ckpt")
    want = VQVAEAnomalyDetector(**dict(params, checkpoint_dir=None)).fit(X)
    INTERRUPT["at_epoch"] = 3  # stopped after two completed epochs
    try:
        with pytest.raises(KeyboardInterrupt):
            VQVAEAnomalyDetector(**params).fit(X)
    finally:
        INTERRUPT["at_epoch"] = None
    assert (tmp_path / "ckpt" / "checkpoint.pt").exists()
    resumed = VQVAEAnomalyDetector(**params).fit(X)
    assert len(resumed.history_) == 4
    assert [h["codes_restarted"] for h in resumed.history_] == [
        h["codes_restarted"] for h in want.history_]
    for a, b in zip(resumed.net_.module_.parameters(), want.net_.module_.parameters(), strict=True):
        assert torch.equal(a, b)
    np.testing.assert_array_equal(resumed.score_samples(X), want.score_samples(X))
    assert resumed.offset_ == want.offset_
    # Other parameters or other images are refused, naming the folder.
    for other, images in ((dict(params, lr=2e-3), X), (params, X[:-1])):
        with pytest.raises(ValueError, match="ckpt.*another fit"):
            VQVAEAnomalyDetector(**other).fit(images)

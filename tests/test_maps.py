"""The torch map kernels, pinned against independent NumPy/SciPy references."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from skvqad.maps import (
    alignment_map,
    anomaly_map,
    anomaly_maps,
    bank_alignment_map,
    grey_dilation,
    ssim,
)


def numpy_ssim(x, y, window_size=11, sigma=1.5, L=1.0, constants=None):
    """Eq. 5 with Gaussian-weighted statistics, one 2-D image, scipy filters."""
    radius = (window_size - 1) // 2
    def filt(a):
        return ndimage.gaussian_filter(a, sigma, mode="nearest", truncate=radius / sigma)

    x = x.astype(np.float64)
    y = y.astype(np.float64)
    mu_x, mu_y = filt(x), filt(y)
    var_x = filt(x * x) - mu_x**2
    var_y = filt(y * y) - mu_y**2
    cov = filt(x * y) - mu_x * mu_y
    c1, c2 = ((0.01 * L) ** 2, (0.03 * L) ** 2) if constants is None else constants
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


@pytest.mark.parametrize("window_size", [3, 7, 11])
@pytest.mark.parametrize("shape", [(2, 1, 16, 16), (3, 3, 9, 23), (1, 2, 4, 5)])
def test_ssim_matches_numpy_reference(window_size, shape):
    rng = np.random.default_rng(0)
    x = rng.random(shape, dtype=np.float32)
    y = np.clip(x + rng.normal(0, 0.2, size=shape), 0, 1).astype(np.float32)
    got = ssim(torch.from_numpy(x), torch.from_numpy(y), window_size=window_size).numpy()
    assert got.shape == shape
    for i in range(shape[0]):
        for c in range(shape[1]):
            want = numpy_ssim(x[i, c], y[i, c], window_size=window_size)
            np.testing.assert_allclose(got[i, c], want, atol=2e-5)


@pytest.mark.parametrize("constants", [(0.01, 0.03), (1e-3, 0.5)])
def test_ssim_constants_match_numpy_reference(constants):
    rng = np.random.default_rng(1)
    x = rng.random((2, 1, 12, 14), dtype=np.float32)
    y = np.clip(x + rng.normal(0, 0.2, size=x.shape), 0, 1).astype(np.float32)
    got = ssim(torch.from_numpy(x), torch.from_numpy(y), constants=constants).numpy()
    default = ssim(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    assert not np.allclose(got, default, atol=1e-3)
    for i in range(2):
        np.testing.assert_allclose(got[i, 0], numpy_ssim(x[i, 0], y[i, 0], constants=constants),
                                   atol=2e-5)


@pytest.mark.parametrize("constants", [(0, 0), (0.01, 0.0), (-1e-4, 9e-4), (float("nan"), 1e-3),
                                       (1e-4, float("inf")), (1e-4,), (1e-4, 9e-4, 1e-3), 1e-4,
                                       ("a", "b")])
def test_ssim_refuses_bad_constants(constants):
    x = torch.full((1, 1, 12, 12), 0.5)  # flat: zero constants would give 0 / 0
    with pytest.raises(ValueError, match="constants must be"):
        ssim(x, x, constants=constants)


@pytest.mark.parametrize("as_type", [list, np.array, torch.tensor])
def test_ssim_accepts_constants_as_any_sequence_of_two(as_type):
    rng = np.random.default_rng(2)
    x, y = (torch.from_numpy(rng.random((1, 1, 12, 12), dtype=np.float32)) for _ in range(2))
    want = ssim(x, y, constants=(1e-4, 9e-4))
    torch.testing.assert_close(ssim(x, y, constants=as_type([1e-4, 9e-4])), want)


def test_ssim_of_identical_images_is_one():
    x = torch.rand(2, 3, 12, 12)
    np.testing.assert_allclose(ssim(x, x).numpy(), 1.0, atol=1e-5)


@pytest.mark.parametrize("radius", [0, 1, 2, 4])
def test_grey_dilation_matches_scipy(radius):
    rng = np.random.default_rng(1)
    maps = rng.random((3, 10, 13), dtype=np.float32)
    got = grey_dilation(torch.from_numpy(maps), radius).numpy()
    footprint = np.ones((1, 2 * radius + 1, 2 * radius + 1), dtype=bool)
    want = ndimage.grey_dilation(maps, footprint=footprint)
    np.testing.assert_array_equal(got, want)


def test_alignment_map_is_squared_distance():
    rng = np.random.default_rng(2)
    z, e = rng.random((2, 2, 5, 3, 4), dtype=np.float32)
    got = alignment_map(torch.from_numpy(z), torch.from_numpy(e)).numpy()
    np.testing.assert_allclose(got, ((z - e) ** 2).sum(axis=1), rtol=1e-6)


def test_relative_alignment_map_divides_by_the_encoder_norm():
    rng = np.random.default_rng(3)
    z, e = rng.normal(size=(2, 2, 5, 3, 4)).astype(np.float32)
    z[0, :, 0, 0] = 0  # a zero encoder output stays finite
    got = alignment_map(torch.from_numpy(z), torch.from_numpy(e), relative=True).numpy()
    norm = np.maximum((z.astype(np.float64) ** 2).sum(axis=1), 1e-12)
    np.testing.assert_allclose(got, ((z - e) ** 2).sum(axis=1) / norm, rtol=1e-5)
    assert np.isfinite(got).all()
    scaled = alignment_map(torch.from_numpy(7 * z), torch.from_numpy(7 * e), relative=True).numpy()
    np.testing.assert_allclose(scaled[:, 1:], got[:, 1:], rtol=1e-5)


def _inputs(seed=3, n=2, c=3, h=14, w=18, latent=(4, 5)):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, c, h, w, generator=g)
    x_hat = torch.rand(n, c, h, w, generator=g)
    am = torch.rand(n, *latent, generator=g)
    return x, x_hat, am


def test_anomaly_map_ssim_is_one_minus_ssim_reduced_over_channels():
    x, x_hat, am = _inputs()
    sm = 1 - ssim(x, x_hat, window_size=7)
    mean = anomaly_map(x, x_hat, None, factor=4, score_map="ssim", ssim_window=7)
    worst = anomaly_map(x, x_hat, None, factor=4, score_map="ssim", ssim_window=7, channel_reduction="max")
    torch.testing.assert_close(mean, sm.mean(1))
    torch.testing.assert_close(worst, sm.amax(1))


def test_anomaly_map_am_is_upsampled_cropped_and_dilated():
    x, x_hat, am = _inputs()
    got = anomaly_map(x, None, am, factor=4, score_map="am", dilation_radius=2).numpy()
    up = np.kron(am.numpy(), np.ones((1, 4, 4), dtype=np.float32))[:, :14, :18]
    want = ndimage.grey_dilation(up, footprint=np.ones((1, 5, 5), dtype=bool))
    np.testing.assert_array_equal(got, want)
    assert got.shape == (2, 14, 18)


def test_anomaly_map_ssim_am_is_the_product():
    x, x_hat, am = _inputs()
    kw = dict(factor=4, ssim_window=5, dilation_radius=1)
    prod = (anomaly_map(x, x_hat, None, score_map="ssim", **kw)
            * anomaly_map(x, None, am, score_map="am", **kw))
    torch.testing.assert_close(anomaly_map(x, x_hat, am, score_map="ssim+am", **kw), prod)


def test_anomaly_map_rejects_unknown_options():
    x, x_hat, am = _inputs()
    with pytest.raises(ValueError, match="score"):
        anomaly_map(x, x_hat, am, factor=4, score_map="l2")
    with pytest.raises(ValueError, match="channel_reduction"):
        anomaly_map(x, x_hat, am, factor=4, channel_reduction="sum")


def test_ssim_dilation_dilates_the_reduced_ssim_map():
    x, x_hat, am = _inputs()
    kw = dict(factor=4, ssim_window=5)
    plain = anomaly_map(x, x_hat, None, score_map="ssim", **kw).numpy()
    got = anomaly_map(x, x_hat, None, score_map="ssim", ssim_dilation_radius=2, **kw).numpy()
    np.testing.assert_array_equal(got, ndimage.grey_dilation(plain, footprint=np.ones((1, 5, 5), bool)))
    both = anomaly_map(x, x_hat, am, score_map="ssim+am", ssim_dilation_radius=2, dilation_radius=1, **kw)
    am_only = anomaly_map(x, None, am, score_map="am", dilation_radius=1, **kw)
    torch.testing.assert_close(both, torch.from_numpy(got) * am_only)


def test_bank_alignment_map_is_the_brute_force_nearest_neighbour():
    from skvqad.maps import bank_alignment_map

    rng = np.random.default_rng(0)
    z_e = rng.normal(size=(3, 5, 2, 4)).astype(np.float32) * 10
    bank = rng.normal(size=(37, 5)).astype(np.float32) * 10
    bank[0] = z_e[0, :, 0, 0] + 1e-3  # a near-duplicate: no cancellation error
    flat = z_e.transpose(0, 2, 3, 1).reshape(-1, 5).astype(np.float64)
    want = ((flat[:, None] - bank[None].astype(np.float64)) ** 2).sum(-1).min(1).reshape(3, 2, 4)
    for max_elements in (2**25, 50, 1):  # one block, several, one bank vector at a time
        got = bank_alignment_map(torch.from_numpy(z_e), torch.from_numpy(bank),
                                 max_elements=max_elements)
        assert got.shape == (3, 2, 4) and got.dtype == torch.float32
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-9)
    assert got[0, 0, 0] == pytest.approx(5e-6, rel=1e-2)


def test_anomaly_maps_computes_each_alignment_from_the_outputs():
    """Given z_e, e and a bank, anomaly_maps picks each setting's alignment map itself."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 8, 8, generator=g)
    x_hat = (x + 0.1).clamp(0, 1)
    z_e, e = torch.randn(2, 3, 2, 2, generator=g), torch.randn(2, 3, 2, 2, generator=g)
    bank = torch.randn(10, 3, generator=g)
    expected = {
        "squared": alignment_map(z_e, e),
        "relative": alignment_map(z_e, e, relative=True),
        "bank": bank_alignment_map(z_e, bank),
    }
    settings = [{"score_map": s, "alignment": a, "dilation_radius": 1}
                for a in expected for s in ("am", "ssim+am")] + [{"score_map": "ssim"}]
    got = anomaly_maps(x, x_hat, None, settings, factor=4, z_e=z_e, e=e, bank=bank)
    given = anomaly_maps(x, x_hat, expected, settings, factor=4)
    for a, b in zip(got, given, strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(got[0], got[2])  # the alignments differ
    with pytest.raises(ValueError, match="needs bank"):
        anomaly_maps(x, x_hat, None, [{"alignment": "bank"}], factor=4, z_e=z_e, e=e)
    with pytest.raises(ValueError, match="needs e"):
        anomaly_maps(x, x_hat, None, [{"alignment": "relative"}], factor=4, z_e=z_e)
    with pytest.raises(ValueError, match="alignment must be one of"):
        anomaly_maps(x, x_hat, None, [{"alignment": "cosine"}], factor=4, z_e=z_e, e=e)


def test_anomaly_maps_reconstructs_lazily_and_once():
    """A callable x_hat is called only if a setting needs the SSIM, and then once."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 8, 8, generator=g)
    z_e, e = torch.randn(2, 3, 2, 2, generator=g), torch.randn(2, 3, 2, 2, generator=g)
    calls = []

    def x_hat():
        calls.append(1)
        return (x + 0.1).clamp(0, 1)

    anomaly_maps(x, x_hat, None, [{"score_map": "am"}], factor=4, z_e=z_e, e=e)
    assert calls == []
    lazy = anomaly_maps(x, x_hat, None, [{"score_map": "ssim"}, {"score_map": "ssim+am"},
                                         {"score_map": "ssim", "ssim_window": 5}], factor=4, z_e=z_e, e=e)
    assert calls == [1]
    eager = anomaly_maps(x, x_hat(), None, [{"score_map": "ssim"}, {"score_map": "ssim+am"},
                                            {"score_map": "ssim", "ssim_window": 5}], factor=4, z_e=z_e, e=e)
    assert all(torch.equal(a, b) for a, b in zip(lazy, eager, strict=True))


@pytest.mark.parametrize("kwargs, match", [
    ({"window_size": 10}, "window_size must be a positive odd int, got 10"),
    ({"window_size": 0}, "window_size must be a positive odd int, got 0"),
    ({"window_size": 3.0}, "window_size"),
    ({"sigma": 0}, "sigma must be a positive finite number, got 0"),
    ({"sigma": float("nan")}, "sigma"),
    ({"sigma": -1.5}, "sigma"),
])
def test_ssim_refuses_windows_that_have_no_centre_or_no_width(kwargs, match):
    # Before: an even window returned an (H+1, W+1) map, 0 an oneDNN error, sigma=0 NaN.
    x = torch.rand(1, 1, 12, 12)
    with pytest.raises(ValueError, match=match):
        ssim(x, x, **kwargs)


def test_ssim_accepts_numpy_integers_and_refuses_mismatched_shapes():
    x = torch.rand(1, 1, 12, 12)
    assert ssim(x, x, window_size=np.int64(5), sigma=np.float32(1.0)).shape == x.shape
    with pytest.raises(ValueError, match="same shape"):
        ssim(x, x[..., :10])


@pytest.mark.parametrize("radius", [-1, 1.5])
def test_grey_dilation_refuses_bad_radii(radius):
    with pytest.raises(ValueError, match="radius must be a non-negative int"):
        grey_dilation(torch.zeros(1, 4, 4), radius)


def test_ssim_in_chunks_equals_ssim_at_once(monkeypatch):
    """ssim filters a few images at a time to bound its temporaries: same values, bit for bit."""
    import skvqad.maps as maps

    g = torch.Generator().manual_seed(0)
    x = torch.rand(7, 3, 20, 24, generator=g)
    y = (x + 0.2 * torch.rand(7, 3, 20, 24, generator=g)).clamp(0, 1)
    at_once = ssim(x, y, window_size=7)
    monkeypatch.setattr(maps, "_SSIM_CHUNK_ELEMENTS", 5 * 3 * 26 * 30 * 2)  # two images a chunk
    assert torch.equal(ssim(x, y, window_size=7), at_once)


def test_maps_take_the_detectors_names_and_defaults():
    """One vocabulary (issue #28): the maps' parameters are the detector's, same defaults."""
    import inspect

    from skvqad import VQVAEAnomalyDetector
    from skvqad.detector import SCORING_PARAMS
    from skvqad.maps import MAP_PARAMS

    detector = VQVAEAnomalyDetector().get_params()
    assert MAP_PARAMS == {k: detector[k] for k in MAP_PARAMS}
    assert set(SCORING_PARAMS) == {*MAP_PARAMS, "score_pooling"}
    signature = inspect.signature(anomaly_map).parameters
    shaping = {k: p.default for k, p in signature.items() if k in MAP_PARAMS}
    assert shaping == {k: MAP_PARAMS[k] for k in shaping} and len(shaping) == 7


@pytest.mark.parametrize("setting, match", [
    ({"score_map": "l2"}, "score_map must be one of"),
    ({"score": "ssim"}, r"Unknown anomaly map setting\(s\) \['score'\]"),
    ({"alignment": "cosine"}, "alignment must be one of"),
    ({"ssim_window": 4}, "ssim_window must be a positive odd int, got 4"),
    ({"ssim_sigma": 0}, "ssim_sigma must be a positive finite number"),
    ({"ssim_constants": (True, True)}, "ssim_constants must be"),
    ({"dilation_radius": -1}, "dilation_radius must be a non-negative int"),
    ({"prior_radius": 1.5}, "prior_radius must be a non-negative int"),
    ({"prior_smoothing": 0}, "prior_smoothing must be a positive finite number"),
])
def test_a_bad_map_setting_is_refused_by_its_name(setting, match):
    from skvqad.maps import check_map_setting

    with pytest.raises(ValueError, match=match):
        check_map_setting(setting)
    x = torch.rand(1, 1, 8, 8)
    with pytest.raises(ValueError, match=match):  # the maps check it once, by the same name
        anomaly_maps(x, x, torch.ones(1, 2, 2), [setting], factor=4)

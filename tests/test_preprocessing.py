import numpy as np
import pytest
from PIL import Image
from sklearn.pipeline import make_pipeline

from skvqad import VQVAEAnomalyDetector
from skvqad.preprocessing import Grayscale, ImageResizer, IntensityScaler


def rgb_uint8(n=4, h=20, w=24, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)


def test_intensity_scaler_ranges():
    X = np.array([[[10.0, 20.0], [30.0, 50.0]]])
    np.testing.assert_allclose(IntensityScaler().fit_transform(X), (X - 10) / 40)
    scaler = IntensityScaler().fit(X)
    assert (scaler.data_min_, scaler.data_max_) == (10.0, 50.0)
    np.testing.assert_allclose(scaler.transform(X * 2), np.clip((X * 2 - 10) / 40, 0, 1))
    assert scaler.set_params(clip=False).transform(X * 2).max() == pytest.approx(2.25)
    X8 = np.array([[[0, 51], [102, 255]]], dtype=np.uint8)
    np.testing.assert_allclose(IntensityScaler(in_range="dtype").fit_transform(X8), X8 / 255, rtol=1e-6)
    np.testing.assert_allclose(IntensityScaler(in_range=(0, 100)).fit_transform(X), np.clip(X / 100, 0, 1))
    with pytest.raises(ValueError, match="needs integer images"):
        IntensityScaler(in_range="dtype").fit(X)
    with pytest.raises(ValueError, match="low < high"):
        IntensityScaler(in_range=(5, 1)).fit(X)


def test_grayscale_matches_pillow():
    X = rgb_uint8()
    got = Grayscale().fit_transform(X)
    want = np.stack([np.asarray(Image.fromarray(im).convert("L")) for im in X])
    assert got.shape == (4, 20, 24) and got.dtype == np.uint8
    assert np.abs(got.astype(int) - want).max() <= 1


def test_grayscale_layouts():
    X = rgb_uint8()
    rgba = np.concatenate([X, np.zeros_like(X[..., :1])], axis=-1)
    np.testing.assert_array_equal(Grayscale().fit_transform(rgba), Grayscale().fit_transform(X))
    flat = Grayscale(image_shape=(20, 24, 3)).fit_transform(X.reshape(4, -1))
    np.testing.assert_array_equal(flat, Grayscale().fit_transform(X).reshape(4, -1))
    gray = X[..., 0]
    np.testing.assert_array_equal(Grayscale().fit_transform(gray), gray)
    with pytest.raises(ValueError, match="1, 3 or 4"):
        Grayscale().fit_transform(np.zeros((2, 4, 4, 2)))


@pytest.mark.parametrize("size", [(10, 12), (7, 9), (40, 30)])
def test_resizer_matches_pillow_bilinear(size):
    X = rgb_uint8()
    got = ImageResizer(size).fit_transform(X)
    want = np.stack([np.asarray(Image.fromarray(im).resize(size[::-1], Image.BILINEAR)) for im in X])
    assert got.shape == (4,) + size + (3,) and got.dtype == np.uint8
    assert np.abs(got.astype(int) - want).max() <= 2


def test_resizer_layouts_and_dtypes():
    X = np.random.default_rng(0).random((3, 8, 8))
    out = ImageResizer(4).fit_transform(X)
    assert out.shape == (3, 4, 4) and out.dtype == np.float64
    want = np.stack([
        np.asarray(Image.fromarray(im.astype(np.float32), mode="F").resize((4, 4), Image.BILINEAR))
        for im in X
    ])
    np.testing.assert_allclose(out, want, atol=1e-5)
    np.testing.assert_allclose(ImageResizer(5).fit_transform(np.full((1, 9, 7), 0.3)), 0.3)
    flat = ImageResizer(4, image_shape=(8, 8)).fit_transform(X.reshape(3, -1))
    np.testing.assert_allclose(flat, out.reshape(3, -1))
    with pytest.raises(ValueError, match="expecting 64 features"):
        ImageResizer(4).fit(X).transform(np.zeros((2, 6, 6)))


def test_pipeline_scores_predicts_and_reaches_anomaly_map():
    X = rgb_uint8(n=24, h=21, w=19)
    pipe = make_pipeline(
        Grayscale(), ImageResizer(16), IntensityScaler(),
        VQVAEAnomalyDetector(hidden_channels=8, embedding_dim=4, n_embeddings=8,
                             n_residual_layers=1, max_epochs=2, random_state=0, device="cpu"),
    ).fit(X)
    scores = pipe.score_samples(X)
    assert scores.shape == (24,)
    np.testing.assert_allclose(pipe.decision_function(X), scores - pipe[-1].offset_)
    assert set(pipe.predict(X)) <= {-1, 1}
    maps = pipe[-1].anomaly_map(pipe[:-1].transform(X))
    assert maps.shape == (24, 16, 16)
    np.testing.assert_allclose(-maps.mean(axis=(1, 2)), scores, rtol=1e-5)
    np.testing.assert_array_equal(pipe.fit_predict(X), pipe.predict(X))


def test_shared_docstring_pieces_are_filled_in():
    """No ``{name}`` placeholder is left in the docs that share pieces (skvqad._docstrings)."""
    import re

    from skvqad.datasets import load_image_folder, load_mvtec_ad

    for obj in (IntensityScaler, Grayscale, ImageResizer, load_image_folder, load_mvtec_ad):
        assert not re.search(r"^\s*\{\w+\}\s*$", obj.__doc__, re.M), obj
    assert "    integer_bits_ : {8, 16} or None\n        Bit depth" in ImageResizer.__doc__
    assert "    n_jobs : int or None, default=None\n        Read the files" in load_image_folder.__doc__


def test_a_failing_fit_leaves_the_last_fit_whole():
    X16 = np.arange(24, dtype=np.uint16).reshape(2, 3, 4) * 2000
    scaler = IntensityScaler(in_range="dtype").fit(X16)
    before = dict(vars(scaler))
    # Other images, float: in_range="dtype" refuses them after reading their shape.
    with pytest.raises(ValueError, match="needs integer images"):
        scaler.fit(np.zeros((2, 5, 5)))
    assert vars(scaler) == before and scaler.integer_bits_ == 16 and scaler.n_features_in_ == 12
    np.testing.assert_allclose(scaler.transform(X16), X16 / 65535, rtol=1e-6)
    with pytest.raises(ValueError, match="low < high"):
        scaler.set_params(in_range=(5, 1)).fit(np.zeros((2, 5, 5)))
    assert {k: v for k, v in vars(scaler).items() if k != "in_range"} == {
        k: v for k, v in before.items() if k != "in_range"}
    # A refit with in_range="fit" keeps no depth from the earlier fit (it reads none).
    scaler.set_params(in_range="fit").fit(X16.astype(np.int64) // 300)
    assert not hasattr(scaler, "integer_bits_") and scaler.data_max_ == 23 * 2000 // 300


@pytest.mark.parametrize("shape", [(16,), (0, 4), (2, 2, 2, 2), (4.0, 4), (4, -4)])
@pytest.mark.parametrize("make", [
    lambda s: IntensityScaler(image_shape=s), lambda s: Grayscale(image_shape=s),
    lambda s: ImageResizer(size=(2, 2), image_shape=s),
    lambda s: VQVAEAnomalyDetector(image_shape=s, device="cpu"),
])
def test_a_malformed_image_shape_is_refused_with_one_message(make, shape):
    """The detector and the transformers share one check (and one message) of image_shape."""
    X = np.zeros((3, 16))
    with pytest.raises(ValueError, match=r"image_shape must be \(H, W\) or \(H, W, C\) of positive "
                                         r"ints, got"):
        make(shape).fit(X)

"""Figures of anomaly maps (Figure API, nothing shown) and the threshold helper."""

import subprocess
import sys

import numpy as np
import pytest

from skvqad.plotting import plot_anomaly_maps

try:
    from matplotlib.figure import Figure
except ImportError:  # matplotlib is optional: only the figure tests need it
    Figure = None

needs_matplotlib = pytest.mark.skipif(Figure is None, reason="matplotlib is not installed")


def make_inputs(shapes=((8, 8), (6, 10, 3), (5, 5, 1)), seed=0):
    """Images of mixed sizes and kinds (float gray, uint8 RGB, (H, W, 1)),
    their maps (image size), reconstructions and masks."""
    rng = np.random.default_rng(seed)
    images, maps, reconstructions, masks = [], [], [], []
    for k, shape in enumerate(shapes):
        image = rng.random(shape)
        if k == 1:
            image = (255 * image).astype(np.uint8)
        images.append(image)
        maps.append(rng.random(shape[:2]))
        reconstructions.append(rng.random(shape))
        mask = np.zeros(shape[:2], dtype=bool)
        mask[1:4, 1:4] = True
        masks.append(mask)
    return images, maps, reconstructions, masks


def image_axes(fig, n_rows, n_cols):
    """The grid of image axes (the colour bar's axes is the last one)."""
    assert len(fig.axes) == n_rows * n_cols + 1
    return np.array(fig.axes[:-1]).reshape(n_rows, n_cols)


@needs_matplotlib
@pytest.mark.parametrize("with_threshold", [False, True])
def test_rows_and_columns(with_threshold):
    images, maps, reconstructions, masks = make_inputs()
    fig = plot_anomaly_maps(
        images,
        maps,
        reconstructions=reconstructions,
        masks=masks,
        threshold=0.5 if with_threshold else None,
        titles=["a", "b", "c"],
    )
    assert isinstance(fig, Figure)
    n_rows = 3 if with_threshold else 2
    axes = image_axes(fig, n_rows, 3)
    assert [ax.get_title() for ax in axes[0]] == ["a", "b", "c"]
    assert axes[1, 0].get_ylabel() == "map on reconstruction"
    # Each image keeps its own size (extent of the first image drawn).
    for ax, image in zip(axes[0], images, strict=False):
        left, right, bottom, top = ax.get_images()[0].get_extent()
        assert (right - left, bottom - top) == (image.shape[1], image.shape[0])
    last = axes[-1, 0]
    assert len(last.collections) > 0  # the ground-truth outline
    if with_threshold:
        assert last.get_ylabel().startswith("map > 0.5")
        assert len(last.get_images()) == 2  # image + red segmentation fill


@needs_matplotlib
def test_batches_maps_on_the_image_and_no_extras():
    rng = np.random.default_rng(1)
    images = rng.random((2, 7, 9, 3)).astype(np.float32)  # an RGB batch array
    maps = rng.random((2, 7, 9))
    fig = plot_anomaly_maps(images, maps, cmap="viridis", alpha=1.0)
    axes = image_axes(fig, 2, 2)
    assert axes[1, 0].get_ylabel() == "map"
    assert axes[1, 1].get_images()[1].get_cmap().name == "viridis"
    # Shared colour range across columns, by default the range of all maps.
    assert axes[1, 0].get_images()[1].get_clim() == (maps.min(), maps.max())
    fig = plot_anomaly_maps(images[:1], maps[:1], vmin=0, vmax=2)
    assert fig.axes[1].get_images()[1].get_clim() == (0, 2)


@needs_matplotlib
def test_a_map_that_is_all_above_the_threshold_draws_no_contour():
    images, maps, _, _ = make_inputs(shapes=((6, 6),))
    fig = plot_anomaly_maps(images, [np.ones((6, 6))], threshold=0.5)
    assert len(image_axes(fig, 3, 1)[2, 0].collections) == 0


@needs_matplotlib
def test_figure_saves_to_png(tmp_path):
    images, maps, reconstructions, masks = make_inputs()
    fig = plot_anomaly_maps(images, maps, masks=masks, threshold=0.8)
    path = tmp_path / "maps.png"
    fig.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_matplotlib
@pytest.mark.parametrize(
    "change, match",
    [
        (lambda a: {**a, "maps": a["maps"][:2]}, "maps has 2 entries but images has 3"),
        (lambda a: {**a, "maps": [np.zeros((8, 7))] + a["maps"][1:]}, r"maps\[0\] has shape \(8, 7\)"),
        (lambda a: {**a, "maps": [np.zeros((10, 6))] + a["maps"][1:]}, "its image's size"),
        (lambda a: {**a, "reconstructions": a["images"][::-1]}, r"reconstructions\[0\] is 5 x 5"),
        (lambda a: {**a, "masks": a["masks"][:1]}, "masks has 1 entries"),
        (lambda a: {**a, "masks": [2 * m for m in a["masks"]]}, "boolean"),
        (lambda a: {**a, "titles": ["only one"]}, "titles has 1 entries"),
        (lambda a: {**a, "images": [np.zeros((8, 8, 2))] + a["images"][1:]}, r"RGB \(H, W, 3\)"),
        (lambda a: {**a, "images": [np.full((8, 8), np.nan)] + a["images"][1:]}, "NaN"),
        (lambda a: {**a, "maps": [np.full((8, 8), np.inf)] + a["maps"][1:]}, "NaN"),
        (lambda a: {**a, "images": np.zeros((8, 8))}, "for one image pass"),
        (lambda a: {**a, "images": [], "maps": []}, "images is empty"),
        (lambda a: {**a, "threshold": np.nan}, "threshold must be a finite number"),
        (lambda a: {**a, "alpha": 1.5}, r"alpha must be a number in \[0, 1\]"),
    ],
)
def test_bad_inputs_raise(change, match):
    images, maps, reconstructions, masks = make_inputs()
    args = dict(images=images, maps=maps, reconstructions=reconstructions, masks=masks)
    with pytest.raises(ValueError, match=match):
        plot_anomaly_maps(**change(args))


def test_missing_matplotlib_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    images, maps, _, _ = make_inputs()
    with pytest.raises(ImportError, match=r'pip install "skvqad\[plot\]"'):
        plot_anomaly_maps(images, maps)


def test_import_is_lazy_and_pyplot_is_never_used():
    code = (
        "import sys, numpy as np, skvqad.plotting as p\n"
        "assert 'matplotlib' not in sys.modules\n"
        "p.threshold_from_normal(np.zeros((1, 4, 4)))\n"
        "assert 'matplotlib' not in sys.modules\n"
    )
    if Figure is not None:
        code += (
            "fig = p.plot_anomaly_maps([np.zeros((4, 4))], [np.ones((4, 4))], threshold=0.5)\n"
            "assert 'matplotlib.pyplot' not in sys.modules\n"
        )
    subprocess.run([sys.executable, "-c", code], check=True)

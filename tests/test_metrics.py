"""The evaluation metrics, pinned against scikit-learn and brute-force references."""

import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from skvqad import metrics
from skvqad.metrics import aupro, image_auroc, per_image_pixel_auroc, pixel_auroc

# --------------------------------------------------------------------------
# References and data
# --------------------------------------------------------------------------


def reference_trapezoid(x, y, x_max):
    """Trapezoidal area under (x, y) up to x_max, the last segment interpolated
    linearly (as ``trapezoid`` of the official MVTec AD evaluation code)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    correction = 0.0
    if x_max not in x:
        ins = np.searchsorted(x, x_max, side="right")
        y_max = y[ins - 1] + (y[ins] - y[ins - 1]) * (x_max - x[ins - 1]) / (x[ins] - x[ins - 1])
        correction = 0.5 * (y_max + y[ins - 1]) * (x_max - x[ins - 1])
    keep = x <= x_max
    x, y = x[keep], y[keep]
    return np.sum(0.5 * (y[1:] + y[:-1]) * np.diff(x)) + correction


def reference_aupro(masks, maps, fpr_limit=0.3):
    """Brute force: one (FPR, PRO) point per distinct map value, computed
    directly with boolean masks and np.mean."""
    regions = []
    for i, mask in enumerate(masks):
        labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
        regions += [(i, labels == k) for k in range(1, n + 1)]
    normal = ~masks.astype(bool)
    fprs, pros = [0.0], [0.0]
    for t in np.unique(maps)[::-1]:
        predicted = maps >= t
        fprs.append(np.sum(predicted & normal) / np.sum(normal))
        pros.append(np.mean([np.mean(predicted[i][region]) for i, region in regions]))
    fprs.append(1.0)
    pros.append(1.0)
    return reference_trapezoid(fprs, pros, fpr_limit) / fpr_limit


def make_data(seed, n=3, size=(12, 10), n_defects=4, dtype=np.float64, decimals=None):
    """Masks with a few rectangular defects (some touching) and noisy maps."""
    rng = np.random.default_rng(seed)
    height, width = size
    masks = np.zeros((n,) + size, dtype=bool)
    for _ in range(n_defects):
        i, y, x = rng.integers(n), rng.integers(height - 2), rng.integers(width - 2)
        masks[i, y : y + rng.integers(1, 4), x : x + rng.integers(1, 4)] = True
    maps = rng.random(masks.shape) + rng.uniform(0, 1) * masks
    if decimals is not None:
        maps = np.round(maps, decimals)
    return masks, maps.astype(dtype)


@pytest.fixture
def small_chunks(monkeypatch):
    """Force many blocks and query chunks, so their seams are exercised."""
    monkeypatch.setattr(metrics, "_BLOCK_PIXELS", 100)
    monkeypatch.setattr(metrics, "_QUERY_CHUNK", 7)


# --------------------------------------------------------------------------
# image_auroc
# --------------------------------------------------------------------------


def test_image_auroc_matches_sklearn():
    rng = np.random.default_rng(0)
    anomalous = rng.random(50) < 0.3
    scores = np.round(rng.random(50) + anomalous, 1)  # with ties
    assert image_auroc(anomalous, scores) == pytest.approx(roc_auc_score(anomalous, scores))
    assert image_auroc(anomalous.astype(int), scores) == image_auroc(anomalous, scores)
    assert image_auroc([False, True], [0.0, 1.0]) == 1.0
    assert image_auroc([False, True], [1.0, 0.0]) == 0.0


@pytest.mark.parametrize(
    "anomalous, scores, match",
    [
        ([0, 1, 1], [0.1, 0.2], "3 labels but scores has 2"),
        ([1, -1, 1], [0.1, 0.2, 0.3], "pass y == -1"),
        ([0, 2, 1], [0.1, 0.2, 0.3], "only 0 and 1"),
        ([0, 1], [0.1, np.nan], "NaN or infinite"),
        ([0, 1], ["a", "b"], "real numbers"),
        ([[0, 1]], [[0.1, 0.2]], r"shape \(n,\)"),
        ([True, True], [0.1, 0.2], "no normal \\(False\\) image"),
        ([False, False], [0.1, 0.2], "no anomalous \\(True\\) image"),
    ],
)
def test_image_auroc_rejects_bad_input(anomalous, scores, match):
    with pytest.raises(ValueError, match=match):
        image_auroc(anomalous, scores)


# --------------------------------------------------------------------------
# pixel_auroc
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype, decimals", [(np.float64, None), (np.float32, None), (np.float64, 2), (np.float32, 1)]
)
def test_pixel_auroc_matches_sklearn(dtype, decimals):
    masks, maps = make_data(0, n=6, size=(20, 17), n_defects=8, dtype=dtype, decimals=decimals)
    want = roc_auc_score(masks.ravel(), maps.ravel())
    assert pixel_auroc(masks, maps) == pytest.approx(want, abs=1e-12)


def test_pixel_auroc_many_ties_and_chunk_seams(small_chunks):
    rng = np.random.default_rng(1)
    masks = rng.random((5, 9, 11)) < 0.3
    maps = np.round(rng.random(masks.shape) + 0.3 * masks, 1)  # ~14 distinct values
    want = roc_auc_score(masks.ravel(), maps.ravel())
    assert pixel_auroc(masks, maps) == pytest.approx(want, abs=1e-12)
    # Anomalous pixels in the majority: the other counting direction.
    want = roc_auc_score(~masks.ravel(), maps.ravel())
    assert pixel_auroc(~masks, maps) == pytest.approx(want, abs=1e-12)


def test_pixel_auroc_integer_maps_and_masks():
    rng = np.random.default_rng(2)
    masks = (rng.random((3, 8, 8)) < 0.2).astype(np.uint8)
    maps = rng.integers(0, 5, size=masks.shape) + masks
    want = roc_auc_score(masks.ravel(), maps.ravel())
    assert pixel_auroc(masks, maps) == pytest.approx(want, abs=1e-12)
    assert pixel_auroc(masks.astype(float), maps.astype(np.uint8)) == pytest.approx(want, abs=1e-12)


def test_pixel_auroc_perfect_inverted_and_constant():
    masks, maps = make_data(3)
    assert pixel_auroc(masks, masks + 0.0) == 1.0
    assert pixel_auroc(masks, -1.0 * masks) == 0.0
    assert pixel_auroc(masks, np.zeros_like(maps)) == 0.5


def test_pixel_auroc_does_not_modify_its_input():
    masks, maps = make_data(4, dtype=np.float32)
    before = maps.copy()
    pixel_auroc(masks, maps)
    aupro(masks, maps)
    np.testing.assert_array_equal(maps, before)


# --------------------------------------------------------------------------
# per_image_pixel_auroc
# --------------------------------------------------------------------------


def test_per_image_pixel_auroc_is_the_mean_over_anomalous_images():
    masks, maps = make_data(5, n=6, n_defects=5, decimals=1)
    masks[0] = False  # a normal image: skipped
    masks[1] = True  # a fully defective image: skipped too
    want = [
        roc_auc_score(masks[i].ravel(), maps[i].ravel())
        for i in range(2, 6)
        if masks[i].any()
    ]
    assert len(want) >= 2
    assert per_image_pixel_auroc(masks, maps) == pytest.approx(np.mean(want), abs=1e-12)


def test_per_image_pixel_auroc_ignores_per_image_offsets_unlike_pooled():
    rng = np.random.default_rng(6)
    masks = np.zeros((4, 10, 10), dtype=bool)
    masks[:, 3:6, 3:6] = True
    maps = rng.random(masks.shape) + 0.8 * masks
    # Images whose whole map is brighter (a harder object): the pooled AUROC
    # drops, the per-image one does not move.
    shifted = maps + np.arange(4)[:, None, None]
    assert per_image_pixel_auroc(masks, shifted) == per_image_pixel_auroc(masks, maps)
    assert pixel_auroc(masks, shifted) < per_image_pixel_auroc(masks, shifted)


def test_per_image_pixel_auroc_needs_an_image_with_both_classes():
    masks = np.zeros((2, 4, 4), dtype=bool)
    masks[1] = True
    with pytest.raises(ValueError, match="no image has both"):
        per_image_pixel_auroc(masks, np.zeros(masks.shape))


# --------------------------------------------------------------------------
# aupro
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("fpr_limit", [0.3, 1.0, 0.05])
def test_aupro_matches_brute_force(seed, fpr_limit):
    dtype = np.float32 if seed % 2 else np.float64
    decimals = 1 if seed % 3 == 0 else None  # many ties, between classes too
    masks, maps = make_data(seed, dtype=dtype, decimals=decimals)
    want = reference_aupro(masks, maps, fpr_limit)
    assert aupro(masks, maps, fpr_limit=fpr_limit) == pytest.approx(want, abs=1e-12)


def test_aupro_matches_brute_force_across_chunk_seams(small_chunks):
    masks, maps = make_data(7, n=5, size=(9, 13), n_defects=7, decimals=2)
    for fpr_limit in (0.3, 0.123, 1.0):
        want = reference_aupro(masks, maps, fpr_limit)
        assert aupro(masks, maps, fpr_limit=fpr_limit) == pytest.approx(want, abs=1e-12)


def test_aupro_limit_at_a_curve_point():
    # 10 normal pixels of distinct values: FPR 0.3 is exactly a point.
    masks = np.zeros((1, 1, 12), dtype=bool)
    masks[0, 0, :2] = True
    maps = np.array([[[0.95, 0.35] + [i / 10 for i in range(10)]]])
    assert aupro(masks, maps, 0.3) == pytest.approx(reference_aupro(masks, maps, 0.3), abs=1e-12)


def test_aupro_regions_are_8_connected():
    # Two diagonal neighbours are one region (8-connectivity), so its overlap
    # is 1/2 while one pixel of it is found; as two regions (4-connectivity)
    # it would be the same mean here, so add a large region to tell them apart.
    masks = np.zeros((1, 8, 8), dtype=bool)
    masks[0, 0, 0] = masks[0, 1, 1] = True
    masks[0, 4:8, 4:8] = True
    maps = np.zeros(masks.shape)
    maps[0, 0, 0] = 1.0  # only this defective pixel is found, at FPR 0
    # 8-connected: regions {2 px, 1 found} and {16 px, 0 found}: PRO = 0.25
    # from FPR 0 until the zeros are flagged (then the curve jumps to (1, 1)).
    assert aupro(masks, maps, fpr_limit=0.3) == pytest.approx(0.25 + 0.75 * 0.3 / 2)
    assert aupro(masks, maps) == pytest.approx(reference_aupro(masks, maps))


def test_aupro_perfect_inverted_and_random():
    masks, maps = make_data(8, n=4, size=(30, 30), n_defects=10)
    assert aupro(masks, masks + 0.0) == 1.0
    assert aupro(masks, -1.0 * masks) == 0.0
    # Random maps: each region's overlap equals the FPR on average, so the
    # area up to L is L^2 / 2, i.e. L / 2 once normalised.
    # (The mean over regions is noisy: 400 regions keep it within ~5 %.)
    rng = np.random.default_rng(0)
    masks = np.zeros((400, 32, 32), dtype=bool)
    for i in range(400):
        y, x = rng.integers(0, 20, size=2)
        masks[i, y : y + rng.integers(2, 12), x : x + rng.integers(2, 12)] = True
    maps = rng.random(masks.shape, dtype=np.float32)
    for fpr_limit in (0.3, 0.1, 1.0):
        assert aupro(masks, maps, fpr_limit=fpr_limit) == pytest.approx(fpr_limit / 2, rel=0.1)


def test_aupro_weighs_regions_not_pixels():
    # A found small defect and a missed large one: PRO 1/2, pixel TPR 1/17.
    masks = np.zeros((2, 10, 10), dtype=bool)
    masks[0, 0, 0] = True
    masks[1, 2:6, 2:6] = True
    maps = np.zeros(masks.shape)
    maps[0, 0, 0] = 1.0
    assert aupro(masks, maps, fpr_limit=0.5) == pytest.approx(0.5 + 0.5 * 0.5 / 2)


# --------------------------------------------------------------------------
# Validation shared by the pixel metrics
# --------------------------------------------------------------------------

PIXEL_METRICS = [pixel_auroc, per_image_pixel_auroc, aupro]


@pytest.mark.parametrize("metric", PIXEL_METRICS)
def test_pixel_metrics_reject_bad_input(metric):
    masks, maps = make_data(9)
    with pytest.raises(ValueError, match="must match"):
        metric(masks[:, :-1], maps)
    with pytest.raises(ValueError, match="maps\\[None\\]"):
        metric(masks[0], maps[0])
    with pytest.raises(ValueError, match="only 0 and 1"):
        metric(masks * 2, maps)
    with pytest.raises(ValueError, match="masks > 0"):
        metric(masks.astype(np.uint8) * 255, maps)
    with pytest.raises(ValueError, match="must be boolean"):
        metric(masks.astype(str), maps)
    with pytest.raises(ValueError, match="real numbers"):
        metric(masks, maps + 0j)
    with pytest.raises(ValueError, match="is empty"):
        metric(masks[:0], maps[:0])
    for bad in (np.nan, np.inf, -np.inf):
        broken = maps.copy()
        broken[1, 2, 3] = bad
        with pytest.raises(ValueError, match="NaN or infinite"):
            metric(masks, broken)


@pytest.mark.parametrize("metric", [pixel_auroc, aupro])
def test_pixel_metrics_need_both_classes(metric):
    maps = np.random.default_rng(0).random((2, 4, 4))
    with pytest.raises(ValueError, match="undefined: the ground truth has no anomalous"):
        metric(np.zeros(maps.shape, dtype=bool), maps)
    with pytest.raises(ValueError, match="undefined: the ground truth has no normal"):
        metric(np.ones(maps.shape, dtype=bool), maps)


@pytest.mark.parametrize("fpr_limit", [0, -0.1, 1.5, "0.3", None])
def test_aupro_rejects_bad_fpr_limit(fpr_limit):
    masks, maps = make_data(10)
    with pytest.raises(ValueError, match="fpr_limit must be a number in \\(0, 1\\]"):
        aupro(masks, maps, fpr_limit=fpr_limit)


def test_metrics_import_neither_torch_nor_matplotlib():
    code = (
        "import sys, skvqad.metrics; "
        "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules, "
        "sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'matplotlib'))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_pixel_report_overall_and_per_group():
    from skvqad.metrics import pixel_report

    rng = np.random.default_rng(7)
    masks = np.zeros((6, 8, 8), dtype=bool)
    masks[2, 2:5, 2:5] = masks[3, 0:2, 0:3] = masks[4, 5:8, 5:8] = masks[5, 1:3, 4:7] = True
    maps = rng.random((6, 8, 8)) + 0.8 * masks
    groups = np.array(["good", "good", "crack", "crack", "hole", "hole"])
    report = pixel_report(masks, maps, groups=groups)
    assert set(report) == {"all", "crack", "hole"}
    assert report["all"]["pixel_auroc"] == pytest.approx(roc_auc_score(masks.ravel(), maps.ravel()))
    sel = np.array([1, 1, 1, 1, 0, 0], dtype=bool)
    assert report["crack"]["n_images"] == 4
    assert report["crack"]["aupro"] == pytest.approx(aupro(masks[sel], maps[sel]))
    assert report["hole"]["image_auroc"] == pytest.approx(
        roc_auc_score([0, 0, 1, 1], maps[[0, 1, 4, 5]].mean(axis=(1, 2))))
    assert pixel_report(masks[:2], maps[:2])["all"]["pixel_auroc"] is None
    # Without groups, the images with a defective pixel are the anomalous ones.
    plain = pixel_report(masks, maps)
    assert set(plain) == {"all"}
    assert plain["all"]["image_auroc"] == pytest.approx(
        roc_auc_score(masks.any(axis=(1, 2)), maps.mean(axis=(1, 2))))


def test_pixel_report_takes_the_image_scores_given():
    rng = np.random.default_rng(0)
    masks = np.zeros((6, 4, 4), bool)
    masks[3:, 1, 1] = True
    maps = rng.random((6, 4, 4))
    scores = np.array([0.0, 0.1, 0.2, 0.9, 0.8, 0.7])  # separates perfectly
    assert metrics.pixel_report(masks, maps, scores=scores)["all"]["image_auroc"] == 1.0
    want = roc_auc_score(masks.reshape(6, -1).any(1), maps.reshape(6, -1).mean(1))
    assert metrics.pixel_report(masks, maps)["all"]["image_auroc"] == pytest.approx(want)
    with pytest.raises(ValueError, match="scores has shape"):
        metrics.pixel_report(masks, maps, scores=scores[:5])

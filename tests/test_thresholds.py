"""Tests of :mod:`skvqad.thresholds`: pixel thresholds and ``offset_``."""

import numpy as np
import pytest

from skvqad import VQVAEAnomalyDetector
from skvqad.plotting import threshold_from_normal as from_plotting
from skvqad.thresholds import offset_from_scores, threshold_from_normal


def test_threshold_from_normal_is_still_importable_from_plotting():
    assert from_plotting is threshold_from_normal


def test_threshold_from_normal_is_the_pooled_quantile():
    rng = np.random.default_rng(2)
    maps = rng.random((5, 12, 12)).astype(np.float32)
    assert threshold_from_normal(maps) == pytest.approx(np.quantile(maps, 0.99))
    assert threshold_from_normal(maps, quantile=0.5) == pytest.approx(np.median(maps))
    assert threshold_from_normal(maps, quantile=1) == pytest.approx(maps.max())
    assert isinstance(threshold_from_normal(maps), float)
    # Maps of different sizes, as a list: all their pixels pooled.
    mixed = [rng.random((4, 6)), rng.random((9, 3)), rng.random((1, 1))]
    pooled = np.concatenate([m.ravel() for m in mixed])
    assert threshold_from_normal(mixed, 0.9) == pytest.approx(np.quantile(pooled, 0.9))
    # About 1 - quantile of normal pixels lie above it.
    big = rng.random((20, 32, 32))
    assert np.mean(big > threshold_from_normal(big, 0.99)) == pytest.approx(0.01, abs=1e-3)


@pytest.mark.parametrize(
    "maps, quantile, match",
    [
        (np.zeros((2, 3, 3)), 1.5, r"quantile must be a number in \[0, 1\]"),
        (np.zeros((2, 3, 3)), -0.1, r"quantile must be a number in \[0, 1\]"),
        (np.zeros((2, 3, 3)), "0.9", r"quantile must be a number in \[0, 1\]"),
        ([], 0.99, "maps_normal is empty"),
        (np.zeros((0, 3, 3)), 0.99, "maps_normal is empty"),
        (np.array([[[np.nan]]]), 0.99, "NaN or infinite"),
        (np.array([["a"]]), 0.99, "real numbers"),
    ],
)
def test_threshold_from_normal_rejects_bad_input(maps, quantile, match):
    with pytest.raises(ValueError, match=match):
        threshold_from_normal(maps, quantile)


def test_offset_from_scores_is_the_contamination_percentile():
    scores = -np.random.default_rng(3).random(1000)
    assert offset_from_scores(scores, 0.1) == pytest.approx(np.percentile(scores, 10))
    assert offset_from_scores(scores) == pytest.approx(np.percentile(scores, 1))  # "auto"
    assert np.mean(scores < offset_from_scores(scores, 0.05)) == pytest.approx(0.05, abs=1e-3)


@pytest.mark.parametrize(
    "scores, contamination, match",
    [
        (np.zeros(3), 0.0, "contamination must be"),
        (np.zeros(3), 0.6, "contamination must be"),
        (np.zeros(3), True, "contamination must be"),
        (np.zeros(0), 0.1, "scores is empty"),
        (np.array([0.0, np.inf]), 0.1, "NaN or infinite"),
    ],
)
def test_offset_from_scores_rejects_bad_input(scores, contamination, match):
    with pytest.raises(ValueError, match=match):
        offset_from_scores(scores, contamination)


def test_detector_offset_is_offset_from_scores_of_the_training_images(stripes, tiny_params):
    detector = VQVAEAnomalyDetector(**tiny_params, contamination=0.2).fit(stripes)
    assert detector.offset_ == offset_from_scores(detector.score_samples(stripes), 0.2)
    detector.set_params(score_map="ssim").refit_threshold(stripes, contamination=0.1)
    assert detector.offset_ == offset_from_scores(detector.score_samples(stripes), 0.1)

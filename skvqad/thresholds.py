"""Thresholds: where a score or a map value starts to mean "anomalous".

Two levels, one rule (a quantile of what normal data gives):

- :func:`threshold_from_normal`: the pixel threshold of a segmentation, a
  high quantile of the anomaly maps of held-out normal images;
- :func:`offset_from_scores`: the image threshold of
  :meth:`~skvqad.VQVAEAnomalyDetector.predict` (``offset_``), the
  ``contamination`` quantile of the image scores of normal images, as
  scikit-learn's outlier detectors set it.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

__all__ = ["threshold_from_normal", "offset_from_scores"]

#: ``_parameter_constraints`` entry of ``contamination`` for the estimators
#: whose ``offset_`` :func:`offset_from_scores` sets (the range it accepts).
CONTAMINATION_CONSTRAINT = [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")]


def threshold_from_normal(maps_normal, quantile: float = 0.99) -> float:
    """Segmentation threshold: a high quantile of the maps of normal images.

    Pixels whose map value is above the returned threshold are rare on
    normal images (a fraction ``1 - quantile`` of their pixels), so on a new
    image they mark likely defects.

    Parameters
    ----------
    maps_normal : array-like of shape (n, H, W), or sequence of (H, W) arrays
        Anomaly maps (higher = more anomalous) of **held-out normal**
        validation images, e.g. ``detector.anomaly_map(X_val_normal)``; maps
        of different sizes may be passed as a list. Do not use the training
        images: the network fits them better than new normal images, so
        their maps are lower and the threshold would come out too low.
    quantile : float in [0, 1], default=0.99
        Quantile of all their pixel values (pooled), computed by
        :func:`numpy.quantile` with linear interpolation.

    Returns
    -------
    float
        The threshold, for ``maps > threshold`` and
        :func:`~skvqad.plotting.plot_anomaly_maps`.

    Raises
    ------
    ValueError
        If the maps are empty or not finite, or ``quantile`` is not in
        [0, 1].

    Notes
    -----
    ``quantile`` trades false alarms against missed defects. ``1 -
    quantile`` is roughly the pixel false positive rate on normal images:
    0.99 flags about 1 % of their pixels (some 650 pixels of a 256 x 256
    image, mostly scattered specks); 0.999 flags ten times fewer, but faint
    or small defects, whose map values do not rise above the normal tail,
    vanish from the segmentation; lower quantiles segment defects more
    completely at the cost of more false alarms. The estimate of a high
    quantile is only as good as the number of normal pixels behind it: use
    enough validation images that ``(1 - quantile) * n_pixels`` is in the
    thousands. To bound instead the fraction of normal *images* with any
    flagged pixel, take a quantile of the per-image maxima,
    ``np.quantile(maps_normal.max(axis=(1, 2)), quantile)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skvqad.thresholds import threshold_from_normal
    >>> maps_normal = np.arange(200.0).reshape(2, 10, 10)
    >>> threshold_from_normal(maps_normal, quantile=0.99)
    197.01
    >>> threshold_from_normal([np.zeros((4, 4)), np.ones((2, 3))], quantile=0.5)
    0.0
    """
    if not isinstance(quantile, Real) or not 0 <= quantile <= 1:
        raise ValueError(f"quantile must be a number in [0, 1], got {quantile!r}.")
    if isinstance(maps_normal, np.ndarray):
        values = maps_normal
    else:
        parts = [np.asarray(m) for m in maps_normal]
        values = np.concatenate([p.ravel() for p in parts]) if parts else np.empty(0)
    values = np.asarray(values)
    if values.dtype.kind not in "biuf":
        raise ValueError(f"maps_normal must hold real numbers, got dtype {values.dtype}.")
    if values.size == 0:
        raise ValueError("maps_normal is empty: there are no pixel values to take a quantile of.")
    if not (np.isfinite(values.min()) and np.isfinite(values.max())):
        raise ValueError("maps_normal contains NaN or infinite values.")
    return float(np.quantile(values, float(quantile)))


def offset_from_scores(scores, contamination="auto") -> float:
    """``offset_`` of an outlier detector: the ``contamination`` quantile of normal scores.

    Scores follow scikit-learn's convention (higher = more normal), so the
    images scoring below the returned offset are the ``contamination``
    fraction of ``scores`` judged most anomalous; this is how
    :class:`~sklearn.ensemble.IsolationForest` sets ``offset_`` when
    ``contamination`` is a number.

    Parameters
    ----------
    scores : array-like of shape (n,)
        Image scores of normal images (``score_samples``), finite.
    contamination : "auto" or float in (0, 0.5], default="auto"
        The fraction to place below the offset; ``"auto"`` is 1 %.

    Returns
    -------
    float
        ``np.percentile(scores, 100 * contamination)`` (linear interpolation).

    Raises
    ------
    ValueError
        If ``scores`` is empty or not finite, or ``contamination`` is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> from skvqad.thresholds import offset_from_scores
    >>> offset_from_scores(-np.arange(101.0), contamination=0.1)
    -90.0
    """
    if contamination == "auto":
        contamination = 0.01
    if (
        isinstance(contamination, bool)
        or not isinstance(contamination, Real)
        or not 0 < contamination <= 0.5
    ):
        raise ValueError(
            f"contamination must be 'auto' or a number in (0, 0.5], got {contamination!r}."
        )
    scores = np.asarray(scores, dtype=float).ravel()
    if scores.size == 0:
        raise ValueError("scores is empty: there is no score to take a quantile of.")
    if not np.isfinite(scores).all():
        raise ValueError("scores contains NaN or infinite values.")
    return float(np.percentile(scores, 100.0 * contamination))

"""Image- and pixel-level evaluation of anomaly detectors (NumPy/SciPy only).

Conventions shared by every function:

* anomaly maps are real arrays ``(n, H, W)``, **higher = more anomalous**
  (as returned by :meth:`VQVAEAnomalyDetector.anomaly_map
  <skvqad.VQVAEAnomalyDetector.anomaly_map>`);
* ground-truth masks are boolean arrays ``(n, H, W)``, True on defective
  pixels (0/1 integers are accepted; 0/255 PNG masks must be converted, e.g.
  ``masks > 0``);
* image scores are **anomaly** scores, higher = more anomalous. The
  estimator's ``score_samples`` is higher for *normal* images, so pass
  ``-detector.score_samples(X)`` (or ``-detector.decision_function(X)``).

The pixel metrics are exact (ties are counted 1/2, as in
:func:`sklearn.metrics.roc_auc_score`) yet memory-bounded: they sort one copy
of the map values, split by class, instead of materialising float64 copies,
index arrays or per-threshold curves of all the pixels. For 1,000 maps of
256 x 256 float32 values (65.5 M pixels) they need about 0.3 GB on top of
their inputs (the size of the maps), and a few seconds.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Iterator

import numpy as np
from scipy import ndimage
from sklearn.metrics import roc_auc_score

__all__ = ["image_auroc", "pixel_auroc", "per_image_pixel_auroc", "aupro", "pixel_report"]

#: Pixels per block when streaming through the maps (a block holds whole images).
_BLOCK_PIXELS = 1 << 22
#: Values per chunk of ``searchsorted`` queries (two int64 results each).
_QUERY_CHUNK = 1 << 20
#: 8-connectivity inside each image, none across images: the 3 x 3 ones
#: structure of the official MVTec AD evaluation, as the middle plane of a
#: 3-D structure so that a block of images is labelled in one call.
_STRUCTURE = np.zeros((3, 3, 3), dtype=bool)
_STRUCTURE[1] = True


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


def _check_values(values, name: str, ndim: int) -> np.ndarray:
    """Real-valued, finite, non-empty array with ``ndim`` dimensions."""
    values = np.asarray(values)
    if values.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {values.dtype}.")
    if values.ndim != ndim:
        expected = "(n,)" if ndim == 1 else "(n, H, W)"
        hint = " For a single map use maps[None]." if ndim == 3 and values.ndim == 2 else ""
        raise ValueError(
            f"{name} must have shape {expected}, got {values.ndim}-D data of shape "
            f"{values.shape}.{hint}"
        )
    if values.size == 0:
        raise ValueError(f"{name} is empty (shape {values.shape}).")
    # min and max propagate NaN, so this finds NaN and inf without a temporary.
    if values.dtype.kind == "f" and not (
        np.isfinite(values.min()) and np.isfinite(values.max())
    ):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return values


def _check_labels(labels, name: str, shape: tuple, shape_name: str) -> np.ndarray:
    """Boolean-like array (bool, or numbers that are all 0 or 1) of ``shape``."""
    labels = np.asarray(labels)
    if labels.shape != shape:
        raise ValueError(
            f"{name} has shape {labels.shape} but {shape_name} has shape {shape}; "
            "they must match."
        )
    if labels.dtype == np.bool_:
        return labels
    if labels.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be boolean, got dtype {labels.dtype}.")
    # Checked in blocks to avoid full-size temporaries.
    flat = labels.reshape(len(labels), -1) if labels.ndim > 1 else labels[:, None]
    step = max(1, _BLOCK_PIXELS // max(1, flat.shape[1]))
    for start in range(0, len(flat), step):
        block = flat[start : start + step]
        if np.any((block != 0) & (block != 1)):
            raise ValueError(
                f"{name} must be boolean (True = anomalous) or hold only 0 and 1; got "
                f"values in [{labels.min()}, {labels.max()}]"
                + (" (for 0/255 masks pass masks > 0)." if labels.max() == 255 else ".")
            )
    return labels


def _check_masks_maps(masks, maps) -> tuple[np.ndarray, np.ndarray]:
    maps = _check_values(maps, "maps", 3)
    masks = _check_labels(masks, "masks", maps.shape, "maps")
    return masks, maps


def _undefined(n_pos: int, n_neg: int, what: str, unit: str = "pixel") -> None:
    """Raise when one class is missing: the ROC (or PRO) curve is undefined."""
    if n_pos == 0 or n_neg == 0:
        missing = "anomalous (True)" if n_pos == 0 else "normal (False)"
        raise ValueError(
            f"{what} is undefined: the ground truth has no {missing} {unit}; "
            "both classes are needed."
        )


# --------------------------------------------------------------------------
# Streaming and counting
# --------------------------------------------------------------------------


def _blocks(n: int, pixels_per_image: int) -> Iterator[slice]:
    """Slices of consecutive images of about ``_BLOCK_PIXELS`` pixels (>= 1 image)."""
    step = max(1, _BLOCK_PIXELS // max(1, pixels_per_image))
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


def _count_anomalous(masks: np.ndarray) -> int:
    """Number of True pixels, counted block by block."""
    pixels = masks[0].size
    return sum(int(np.count_nonzero(masks[block])) for block in _blocks(len(masks), pixels))


def _split_sorted(
    masks: np.ndarray, maps: np.ndarray, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted values of the anomalous and of the normal pixels, in one buffer.

    Memory: one array of ``maps.size`` values in the dtype of ``maps`` (both
    classes are views into it), plus a block of workspace.
    """
    pixels = maps[0].size
    n_pos = _count_anomalous(masks)
    _undefined(n_pos, masks.size - n_pos, what)
    buffer = np.empty(maps.size, dtype=maps.dtype)
    pos, neg = buffer[:n_pos], buffer[n_pos:]
    i_pos = i_neg = 0
    for block in _blocks(len(maps), pixels):
        values = maps[block].reshape(-1)
        mask = masks[block].reshape(-1).astype(bool, copy=False)
        block_pos = values[mask]
        pos[i_pos : i_pos + block_pos.size] = block_pos
        i_pos += block_pos.size
        block_neg = values[~mask]
        neg[i_neg : i_neg + block_neg.size] = block_neg
        i_neg += block_neg.size
    pos.sort()
    neg.sort()
    return pos, neg


def _rank_sums(sorted_values: np.ndarray, queries: np.ndarray) -> Iterator[np.ndarray]:
    """For chunks of ``queries``: ``#(values < q) + #(values <= q)`` per query (int64)."""
    for start in range(0, queries.size, _QUERY_CHUNK):
        chunk = queries[start : start + _QUERY_CHUNK]
        below = np.searchsorted(sorted_values, chunk, side="left")
        below += np.searchsorted(sorted_values, chunk, side="right")
        yield below


def _auroc_sorted(pos: np.ndarray, neg: np.ndarray) -> float:
    """Exact Mann-Whitney AUROC of two sorted samples, ties counted 1/2.

    ``2 U = sum over pairs of 2 [p > n] + [p == n]``, computed in integers by
    querying the smaller sample into the larger one (sorted queries, so
    ``searchsorted`` walks the larger array almost linearly).
    """
    n_pos, n_neg = pos.size, neg.size
    if n_pos <= n_neg:
        twice_u = sum(int(s.sum()) for s in _rank_sums(neg, pos))
    else:
        twice_u = 2 * n_pos * n_neg - sum(int(s.sum()) for s in _rank_sums(pos, neg))
    return twice_u / (2 * n_pos * n_neg)


# --------------------------------------------------------------------------
# Public metrics
# --------------------------------------------------------------------------


def image_auroc(anomalous, scores) -> float:
    """Area under the ROC curve of image anomaly scores.

    Parameters
    ----------
    anomalous : array-like of bool of shape (n,)
        Ground truth, True (or 1) for the anomalous images, the positive class.
        Labels ``y`` in {+1, -1} as ``predict`` returns them become
        ``anomalous = y == -1``.
    scores : array-like of shape (n,)
        Anomaly scores, **higher = more anomalous**, e.g.
        ``-detector.score_samples(X)`` (``score_samples`` itself is higher
        for normal images and would give ``1 - AUROC``).

    Returns
    -------
    float
        :func:`sklearn.metrics.roc_auc_score` ``(anomalous, scores)``: the
        probability that a random anomalous image scores above a random
        normal one, ties counted 1/2. 0.5 is chance, 1.0 perfect.

    Raises
    ------
    ValueError
        If the lengths differ, ``anomalous`` is not boolean, ``scores`` is not
        finite, or only one class is present.

    Examples
    --------
    >>> from skvqad.metrics import image_auroc
    >>> image_auroc([False, False, True, True], [0.1, 0.4, 0.35, 0.8])
    0.75

    With a fitted detector: ``image_auroc(anomalous, -detector.score_samples(X))``.
    """
    scores = _check_values(scores, "scores", 1)
    anomalous = np.asarray(anomalous)
    if anomalous.ndim != 1:
        raise ValueError(
            f"anomalous must have shape (n,), got {anomalous.ndim}-D data of shape "
            f"{anomalous.shape}."
        )
    if anomalous.shape != scores.shape:
        raise ValueError(
            f"anomalous has {anomalous.shape[0]} labels but scores has "
            f"{scores.shape[0]} values; they must match."
        )
    try:
        anomalous = _check_labels(anomalous, "anomalous", scores.shape, "scores")
    except ValueError as exc:
        if np.all(np.isin(anomalous, (-1, 1))):
            raise ValueError(
                f"{exc} Labels in {{1, -1}} as predict returns them: pass y == -1."
            ) from None
        raise
    n_pos = int(np.count_nonzero(anomalous))
    _undefined(n_pos, anomalous.size - n_pos, "Image AUROC", unit="image")
    return float(roc_auc_score(anomalous.astype(bool), scores))


def pixel_auroc(masks, maps) -> float:
    """Pooled pixel AUROC: every pixel of every image in one ROC curve.

    The standard pixel-level metric of MVTec AD papers (and of anomalib): all
    pixels of all images are ranked together by their map value, so a single
    threshold must separate defective pixels from normal ones across images.

    Parameters
    ----------
    masks : array-like of bool of shape (n, H, W)
        Ground truth, True on defective pixels.
    maps : array-like of shape (n, H, W)
        Anomaly maps, higher = more anomalous.

    Returns
    -------
    float
        Exactly ``roc_auc_score(masks.ravel(), maps.ravel())``: the
        Mann-Whitney statistic with ties counted 1/2, in integer arithmetic.

    Raises
    ------
    ValueError
        If the shapes differ, ``masks`` is not boolean, ``maps`` is not finite,
        or there is no anomalous or no normal pixel (AUROC undefined).

    See Also
    --------
    per_image_pixel_auroc : the mean of per-image pixel AUROCs.
    aupro : the area under the per-region overlap curve.

    Notes
    -----
    **Memory.** The values of each class are copied once into a single
    buffer of ``maps.size`` values in the dtype of ``maps`` (float32 maps: 4
    bytes per pixel) and sorted in place; ranks are then counted by
    ``searchsorted`` in chunks of 2^20 queries. Peak extra memory is about
    ``maps.itemsize * maps.size + 40 MB``, where
    :func:`~sklearn.metrics.roc_auc_score` on the same pixels holds several
    float64 and int64 copies of them (for the same result, to the last bit).
    Non-boolean masks are converted block by block, never as a whole.

    Examples
    --------
    >>> import numpy as np
    >>> masks = np.zeros((2, 4, 4), dtype=bool)
    >>> masks[0, :2, :2] = True  # a 2 x 2 defect in the first image
    >>> maps = masks.astype(float)
    >>> maps[1, 0, 0] = 2.0  # a false alarm on the normal image
    >>> from skvqad.metrics import pixel_auroc
    >>> round(pixel_auroc(masks, maps), 4)  # 27 of the 28 normal pixels rank below
    0.9643
    """
    masks, maps = _check_masks_maps(masks, maps)
    pos, neg = _split_sorted(masks, maps, "Pixel AUROC")
    return _auroc_sorted(pos, neg)


def per_image_pixel_auroc(masks, maps) -> float:
    """Mean of the pixel AUROCs of the anomalous images, each on its own.

    Parameters
    ----------
    masks : array-like of bool of shape (n, H, W)
        Ground truth, True on defective pixels.
    maps : array-like of shape (n, H, W)
        Anomaly maps, higher = more anomalous.

    Returns
    -------
    float
        The mean, over the images whose mask holds both defective and normal
        pixels, of the exact pixel AUROC of that image alone. Images without
        a defect (and fully defective ones) are skipped.

    Raises
    ------
    ValueError
        If the shapes differ, ``masks`` is not boolean, ``maps`` is not finite,
        or no image has both defective and normal pixels.

    See Also
    --------
    pixel_auroc : the pooled pixel AUROC, the standard.

    Notes
    -----
    Some papers report this instead of the pooled :func:`pixel_auroc`; the two
    are not comparable, and this one is usually higher because each image is
    ranked only against itself:

    * it is invariant to any per-image increasing transformation of the maps
      (an image whose whole map is brighter, e.g. a harder or noisier
      object, costs nothing), whereas the pooled AUROC needs one threshold
      that works for all images at once;
    * the normal images are ignored, so false alarms on defect-free images,
      which a deployed detector pays for, do not count;
    * every defective image weighs the same, whatever its defect size, while
      the pooled AUROC is dominated by the images with large defects.

    Memory: one image's values at a time.

    Examples
    --------
    >>> import numpy as np
    >>> masks = np.zeros((2, 4, 4), dtype=bool)
    >>> masks[0, :2, :2] = True  # a 2 x 2 defect in the first image
    >>> maps = masks.astype(float)
    >>> maps[1, 0, 0] = 2.0  # a false alarm on the normal image
    >>> from skvqad.metrics import per_image_pixel_auroc, pixel_auroc
    >>> per_image_pixel_auroc(masks, maps)  # blind to the false alarm
    1.0
    >>> round(pixel_auroc(masks, maps), 4)
    0.9643
    """
    masks, maps = _check_masks_maps(masks, maps)
    values = []
    for mask, amap in zip(masks, maps, strict=True):
        mask = mask.astype(bool, copy=False)
        n_pos = int(np.count_nonzero(mask))
        if n_pos == 0 or n_pos == mask.size:
            continue
        values.append(_auroc_sorted(np.sort(amap[mask]), np.sort(amap[~mask])))
    if not values:
        raise ValueError(
            "Per-image pixel AUROC is undefined: no image has both anomalous (True) "
            "and normal (False) pixels in its mask."
        )
    return float(np.mean(values))


def aupro(masks, maps, fpr_limit: float = 0.3) -> float:
    """Normalised area under the per-region overlap (PRO) curve up to an FPR.

    The segmentation metric of the MVTec AD dataset (Bergmann et al., IJCV
    2021; CVPR 2019). At each threshold ``t``, a pixel is predicted anomalous
    when its map value is ``>= t``; the curve plots, against the false
    positive rate over all normal pixels of all images, the PRO: the mean,
    over every connected defect region of every image, of the fraction of
    the region's pixels predicted anomalous. Each defect counts the same
    whatever its size, unlike in :func:`pixel_auroc`.

    Parameters
    ----------
    masks : array-like of bool of shape (n, H, W)
        Ground truth, True on defective pixels. Its regions are the
        connected components of each image's mask with 8-connectivity:
        ``scipy.ndimage.label(mask, structure=np.ones((3, 3)))``, as the
        official MVTec AD evaluation code does.
    maps : array-like of shape (n, H, W)
        Anomaly maps, higher = more anomalous.
    fpr_limit : float in (0, 1], default=0.3
        Integration limit on the false positive rate (0.3 in the MVTec AD
        papers). Low FPRs are where a detector is used, and integrating
        only up to here keeps trivial thresholds (flag everything) out.

    Returns
    -------
    float
        The area under the PRO curve from FPR 0 to ``fpr_limit``, divided by
        ``fpr_limit``: 1.0 for a perfect detector, about ``fpr_limit / 2``
        (0.15) for random maps (their PRO equals their FPR on average).

    Raises
    ------
    ValueError
        If the shapes differ, ``masks`` is not boolean, ``maps`` is not finite,
        ``fpr_limit`` is not in (0, 1], or there is no anomalous or no normal
        pixel.

    Notes
    -----
    **Exact.** The curve has one point per distinct map value (plus (0, 0)
    and (1, 1)); it is integrated with the trapezoidal rule and cut at
    ``fpr_limit`` by linear interpolation on the segment that crosses it,
    as in the official ``compute_pro`` and ``trapezoid`` functions. Instead
    of building the curve, the area is summed in closed form: along the
    segment where the FPR passes the normal pixels of value ``v``, the PRO
    climbs from the overlap of the thresholds above ``v`` to the overlap at
    ``v``, so each normal pixel above the cut contributes
    ``(W(> v) + W(>= v)) / 2``, where ``W`` sums the weights ``1 / |region|``
    of the anomalous pixels. That is a weighted Mann-Whitney statistic,
    computed with ``searchsorted`` on sorted values, with no loop over
    thresholds; the curve between FPR 0 and ``fpr_limit`` is the same.

    **Memory.** One buffer of ``maps.size`` values in the dtype of ``maps``
    (the sorted values of both classes), plus, for each anomalous pixel, a
    float64 weight and, while they are sorted, an int64 index and a copy of
    the weight; plus a block of about 4 M pixels of workspace (int32
    labels). About ``maps.itemsize * maps.size + 24 * n_anomalous + 40 MB``
    at the peak (the official code allocates over 20 bytes per pixel).

    Examples
    --------
    >>> import numpy as np
    >>> masks = np.zeros((2, 4, 4), dtype=bool)
    >>> masks[0, :2, :2] = True  # a 2 x 2 defect in the first image
    >>> maps = masks.astype(float)
    >>> maps[1, 0, 0] = 2.0  # a false alarm on the normal image
    >>> from skvqad.metrics import aupro
    >>> aupro(masks, masks.astype(float))  # a perfect segmentation
    1.0
    >>> round(aupro(masks, maps), 4)
    0.881
    """
    masks, maps = _check_masks_maps(masks, maps)
    if not isinstance(fpr_limit, Real) or not 0 < fpr_limit <= 1:
        raise ValueError(f"fpr_limit must be a number in (0, 1], got {fpr_limit!r}.")
    fpr_limit = float(fpr_limit)
    pixels = maps[0].size

    # Anomalous pixels: values and weights 1 / |region|; normal pixel values.
    n_pos = _count_anomalous(masks)
    n_neg = maps.size - n_pos
    _undefined(n_pos, n_neg, "AUPRO")
    buffer = np.empty(maps.size, dtype=maps.dtype)
    pos, neg = buffer[:n_pos], buffer[n_pos:]
    weights = np.empty(n_pos)
    n_regions = 0
    i_pos = i_neg = 0
    for block in _blocks(len(maps), pixels):
        labels, n_block = ndimage.label(masks[block], structure=_STRUCTURE)
        labels = labels.reshape(-1)
        values = maps[block].reshape(-1)
        inside = labels > 0
        block_pos = values[inside]
        region = labels[inside]
        pos[i_pos : i_pos + region.size] = block_pos
        sizes = np.bincount(region, minlength=n_block + 1)
        weights[i_pos : i_pos + region.size] = 1.0 / sizes[region]
        i_pos += region.size
        block_neg = values[~inside]
        neg[i_neg : i_neg + block_neg.size] = block_neg
        i_neg += block_neg.size
        n_regions += n_block
        del labels, inside, region, block_pos, block_neg
    order = np.argsort(pos)
    pos[:] = pos[order]
    weights[:] = weights[order]
    del order
    neg.sort()

    # The segment of the curve that crosses fpr_limit: normal pixels of value
    # v_cut, of which n_above lie strictly above it and n_tied equal it.
    m = fpr_limit * n_neg
    rank = min(max(math.ceil(m), 1), n_neg)  # descending rank of v_cut, from 1
    v_cut = neg[n_neg - rank]
    n_below_or_at = int(np.searchsorted(neg, v_cut, side="right"))
    n_above = n_neg - n_below_or_at
    n_tied = n_below_or_at - int(np.searchsorted(neg, v_cut, side="left"))

    # Full segments, those of the normal pixels above v_cut (top):
    # sum_p w_p (#{n in top: n < p} + #{n in top: n <= p}) / 2.
    top = neg[n_below_or_at:]
    area = 0.0
    for start, ranks in zip(range(0, n_pos, _QUERY_CHUNK), _rank_sums(top, pos), strict=False):
        area += float(np.dot(weights[start : start + ranks.size], ranks))
    area /= 2.0

    # The partial segment, from FPR n_above / n_neg to fpr_limit, along which
    # the overlap mass climbs linearly from W(> v_cut) to W(>= v_cut).
    hi = float(weights[np.searchsorted(pos, v_cut, side="right") :].sum())
    lo = float(weights[np.searchsorted(pos, v_cut, side="left") :].sum())
    width = m - n_above  # in normal pixels, in (0, n_tied]
    at_limit = hi + (lo - hi) * width / n_tied
    area += width * (hi + at_limit) / 2.0
    return float(area / (n_regions * n_neg) / fpr_limit)


def pixel_report(
    masks, maps, *, groups=None, normal_group: str = "good", fpr_limit: float = 0.3, scores=None
) -> dict:
    """All the pixel and image metrics of a test set, overall and per defect type.

    Parameters
    ----------
    masks : array-like of bool of shape (n, H, W)
        Ground truth, True on defective pixels.
    maps : array-like of shape (n, H, W)
        Anomaly maps, higher = more anomalous.
    groups : array-like of str of shape (n,) or None, default=None
        Defect type of each image, ``normal_group`` for the normal ones (the
        ``defect_types`` of :mod:`skvqad.datasets`' loaders). A defect type is
        evaluated on its images together with all the normal ones. None: the
        images whose mask has a defective pixel are anomalous, the others
        normal, and only ``"all"`` is reported.
    normal_group : str, default="good"
        The group name of the normal images.
    fpr_limit : float, default=0.3
        Integration limit of :func:`aupro`.
    scores : array-like of shape (n,) or None, default=None
        Image anomaly scores (higher = more anomalous) for ``image_auroc``,
        e.g. ``-detector.score_samples(X)`` with a ``score_pooling``; None
        scores each image by the mean of its map.

    Returns
    -------
    dict
        ``{"all": {...}, "<defect type>": {...}, ...}``; each entry holds
        ``n_images``, ``pixel_auroc`` (pooled), ``per_image_pixel_auroc``,
        ``aupro`` and ``image_auroc`` (images scored by ``scores``, an image
        being anomalous when its mask has a defective pixel, or when it is
        not in ``normal_group``). A metric that is undefined
        for an entry (e.g. no defective pixel) is None.

    Examples
    --------
    >>> import numpy as np
    >>> masks = np.zeros((2, 4, 4), dtype=bool)
    >>> masks[0, :2, :2] = True  # a 2 x 2 defect in the first image
    >>> maps = masks.astype(float)
    >>> maps[1, 0, 0] = 2.0  # a false alarm on the normal image
    >>> from skvqad.metrics import pixel_report
    >>> report = pixel_report(masks, maps, groups=["crack", "good"])
    >>> sorted(report)
    ['all', 'crack']
    >>> sorted(report["crack"])
    ['aupro', 'image_auroc', 'n_images', 'per_image_pixel_auroc', 'pixel_auroc']
    >>> report["crack"]["n_images"], report["crack"]["image_auroc"]
    (2, 1.0)
    """
    masks, maps = _check_masks_maps(masks, maps)
    masks = masks.astype(bool, copy=False)
    n = len(maps)
    anomalous = masks.reshape(n, -1).any(axis=1)
    by_type = groups is not None
    if groups is None:
        groups = np.where(anomalous, "defect", normal_group)
    groups = np.asarray(groups)
    if groups.shape != (n,):
        raise ValueError(f"groups has shape {groups.shape} but there are {n} maps.")
    anomalous |= groups != normal_group
    if scores is None:
        scores = maps.reshape(n, -1).mean(axis=1)
    else:
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != (n,):
            raise ValueError(f"scores has shape {scores.shape} but there are {n} maps.")

    def entry(select: np.ndarray | None) -> dict:
        # The whole set is passed as it is; a group's subset is copied once.
        m, a = (masks, maps) if select is None else (masks[select], maps[select])
        select = slice(None) if select is None else select

        def safe(fn, *args):
            try:
                return float(fn(*args))
            except ValueError:
                return None

        return {
            "n_images": len(m),
            "pixel_auroc": safe(pixel_auroc, m, a),
            "per_image_pixel_auroc": safe(per_image_pixel_auroc, m, a),
            "aupro": safe(aupro, m, a, fpr_limit),
            "image_auroc": safe(image_auroc, anomalous[select], scores[select]),
        }

    report = {"all": entry(None)}
    if by_type:
        normal = groups == normal_group
        for group in sorted(set(groups.tolist()) - {normal_group}):
            report[str(group)] = entry(normal | (groups == group))
    return report

"""Figures of anomaly maps and segmentations (matplotlib, optional).

matplotlib is imported only inside :func:`plot_anomaly_maps`, so
``import skvqad.plotting`` works without it; install it with
``pip install "skvqad[plot]"``. Figures are built with the object-oriented
:class:`matplotlib.figure.Figure` API, not ``pyplot``: nothing is shown, no
window opens and no global pyplot state is touched. Display a figure in a
notebook by leaving it as the cell's value, or save it with
``fig.savefig("maps.png")``.

The segmentation threshold comes from
:func:`skvqad.thresholds.threshold_from_normal` (also importable from here).
"""

from __future__ import annotations

from numbers import Real
from typing import TYPE_CHECKING, Sequence

import numpy as np

# Importable from here too, where it lived first.
from .thresholds import threshold_from_normal as threshold_from_normal

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["plot_anomaly_maps"]

#: Colours of the segmentation row.
_PREDICTION_COLOR = "red"
_TRUTH_COLOR = "lime"


def _require_matplotlib():
    """Import matplotlib's Figure and ScalarMappable, or say how to install it."""
    try:
        from matplotlib.cm import ScalarMappable
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            'Plotting needs matplotlib, which is not installed: pip install "skvqad[plot]" '
            "(or pip install matplotlib)."
        ) from exc
    return Figure, ScalarMappable


def _as_list(items, name: str) -> list:
    """A sequence of per-image arrays; an array is split along its first axis."""
    if isinstance(items, np.ndarray):
        if items.ndim < 3:
            raise ValueError(
                f"{name} as an array must be a batch (n, H, W) or (n, H, W, C), got shape "
                f"{items.shape}; for one image pass [image]."
            )
        return list(items)
    try:
        return list(items)
    except TypeError:
        raise ValueError(
            f"{name} must be a sequence of arrays, got {type(items).__name__}."
        ) from None


def _check_same_length(items: list, name: str, n: int) -> None:
    if len(items) != n:
        raise ValueError(f"{name} has {len(items)} entries but images has {n}; they must match.")


def _to_display(image, name: str, index: int) -> np.ndarray:
    """An image as float in [0, 1], shape (H, W) (grayscale) or (H, W, 3)."""
    image = np.asarray(image)
    if image.dtype.kind not in "biuf":
        raise ValueError(f"{name}[{index}] must hold real numbers, got dtype {image.dtype}.")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(
            f"{name}[{index}] must be grayscale (H, W) or RGB (H, W, 3), got shape {image.shape}."
        )
    if 0 in image.shape:
        raise ValueError(f"{name}[{index}] is empty (shape {image.shape}).")
    if image.dtype in (np.uint8, np.uint16):
        return image / float(np.iinfo(image.dtype).max)
    image = image.astype(float)
    if not np.isfinite(image).all():
        raise ValueError(f"{name}[{index}] contains NaN or infinite values.")
    return np.clip(image, 0.0, 1.0)


def _check_map(amap, name: str, index: int, shape: tuple) -> np.ndarray:
    amap = np.asarray(amap)
    if amap.dtype.kind not in "biuf":
        raise ValueError(f"{name}[{index}] must hold real numbers, got dtype {amap.dtype}.")
    if amap.shape != shape:
        raise ValueError(
            f"{name}[{index}] has shape {amap.shape} but images[{index}] is {shape[0]} x "
            f"{shape[1]} pixels; each must have its image's size (H, W)."
        )
    amap = amap.astype(float)
    if not np.isfinite(amap).all():
        raise ValueError(f"{name}[{index}] contains NaN or infinite values.")
    return amap


def _outline(ax, region: np.ndarray, color: str, **kwargs) -> None:
    """Contour of a boolean region (skipped when empty or full: no contour)."""
    if region.any() and not region.all():
        ax.contour(region.astype(float), levels=[0.5], colors=color, **kwargs)


def plot_anomaly_maps(
    images,
    maps,
    *,
    reconstructions=None,
    masks=None,
    threshold: float | None = None,
    titles: Sequence[str] | None = None,
    cmap: str = "jet",
    alpha: float = 0.5,
    vmin: float | None = None,
    vmax: float | None = None,
) -> Figure:
    """Images, their anomaly maps and segmentations, one column per image.

    The layout of Fig. 2 of Gangloff et al. (2022). Rows, top to bottom:

    1. the image;
    2. its anomaly map overlaid on its reconstruction (or on the image when
       ``reconstructions`` is None), with a colour bar shared by all columns;
    3. only when ``threshold`` is given: the segmentation, the pixels whose
       map value is ``> threshold``, filled and outlined in red on the image,
       with the ground-truth defects outlined in green when ``masks`` is
       given.

    Parameters
    ----------
    images : sequence of array-like
        The images, each grayscale ``(H, W)`` / ``(H, W, 1)`` or RGB
        ``(H, W, 3)``, of any size (they need not share one): ``uint8``
        (0-255), ``uint16``, or floats in [0, 1] (values outside are
        clipped). An array ``(n, H, W)`` or ``(n, H, W, C)`` is a sequence of
        its first axis.
    maps : sequence of array-like
        One anomaly map ``(H, W)`` per image, of its image's size, higher =
        more anomalous, e.g. ``detector.anomaly_map(X)``.
    reconstructions : sequence of array-like or None, default=None
        One reconstruction per image, same size, same conventions as
        ``images``; the maps are drawn on them when given.
    masks : sequence of array-like of bool or None, default=None
        Ground-truth defects, one ``(H, W)`` mask per image, outlined in
        green on the segmentation row (on the map row when ``threshold`` is
        None).
    threshold : float or None, default=None
        Segmentation threshold on the map values, e.g. from
        :func:`threshold_from_normal`; None leaves out the segmentation row.
    titles : sequence of str or None, default=None
        One title per column.
    cmap : str, default="jet"
        Colormap of the anomaly maps.
    alpha : float in [0, 1], default=0.5
        Opacity of the maps over the (reconstructed) images.
    vmin, vmax : float or None, default=None
        Colour range of the maps, the same for every column so that colours
        compare across images; None takes the minimum (maximum) over all
        the maps.

    Returns
    -------
    matplotlib.figure.Figure
        ``n_rows * n_images`` image axes (``fig.axes[:n_rows * n_images]``,
        row by row) followed by the colour bar's axes. Not shown and not
        registered with pyplot.

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    ValueError
        If the sequences differ in length, a map, reconstruction or mask
        does not have its image's size, or an input is not a valid image.

    Examples
    --------
    >>> import numpy as np
    >>> from skvqad.plotting import plot_anomaly_maps
    >>> images = np.random.default_rng(0).uniform(size=(2, 8, 8))
    >>> maps = np.zeros((2, 8, 8))
    >>> maps[1, 2:5, 2:5] = 1.0
    >>> fig = plot_anomaly_maps(images, maps, masks=maps > 0, threshold=0.5)
    >>> len(fig.axes)  # 3 rows of 2 images, and the colour bar
    7
    """
    Figure, ScalarMappable = _require_matplotlib()
    images = _as_list(images, "images")
    n = len(images)
    if n == 0:
        raise ValueError("images is empty: there is nothing to plot.")
    maps = _as_list(maps, "maps")
    _check_same_length(maps, "maps", n)
    images = [_to_display(image, "images", i) for i, image in enumerate(images)]
    shapes = [image.shape[:2] for image in images]
    maps = [_check_map(amap, "maps", i, shapes[i]) for i, amap in enumerate(maps)]
    if reconstructions is not None:
        reconstructions = _as_list(reconstructions, "reconstructions")
        _check_same_length(reconstructions, "reconstructions", n)
        reconstructions = [
            _to_display(rec, "reconstructions", i) for i, rec in enumerate(reconstructions)
        ]
        for i, rec in enumerate(reconstructions):
            if rec.shape[:2] != shapes[i]:
                raise ValueError(
                    f"reconstructions[{i}] is {rec.shape[0]} x {rec.shape[1]} pixels but "
                    f"images[{i}] is {shapes[i][0]} x {shapes[i][1]}; they must match."
                )
    if masks is not None:
        masks = _as_list(masks, "masks")
        _check_same_length(masks, "masks", n)
        checked = []
        for i, mask in enumerate(masks):
            mask = _check_map(mask, "masks", i, shapes[i])
            if np.any((mask != 0) & (mask != 1)):
                raise ValueError(f"masks[{i}] must be boolean (True = defective) or 0/1.")
            checked.append(mask.astype(bool))
        masks = checked
    if titles is not None:
        titles = list(titles)
        _check_same_length(titles, "titles", n)
    if threshold is not None and (
        not isinstance(threshold, Real) or not np.isfinite(threshold)
    ):
        raise ValueError(f"threshold must be a finite number or None, got {threshold!r}.")
    if not isinstance(alpha, Real) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}.")
    vmin = min(float(amap.min()) for amap in maps) if vmin is None else float(vmin)
    vmax = max(float(amap.max()) for amap in maps) if vmax is None else float(vmax)

    n_rows = 2 if threshold is None else 3
    fig = Figure(figsize=(1.9 * n + 1.4, 1.9 * n_rows + 0.3), layout="constrained")
    axes = fig.subplots(n_rows, n, squeeze=False)

    def show(ax, image):
        if image.ndim == 2:
            ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        else:
            ax.imshow(image, interpolation="nearest")

    mappable = None
    for j in range(n):
        show(axes[0, j], images[j])
        if titles is not None:
            axes[0, j].set_title(str(titles[j]), fontsize="medium")
        background = images[j] if reconstructions is None else reconstructions[j]
        show(axes[1, j], background)
        mappable = axes[1, j].imshow(
            maps[j], cmap=cmap, alpha=alpha, vmin=vmin, vmax=vmax, interpolation="nearest"
        )
        if threshold is not None:
            ax = axes[2, j]
            show(ax, images[j])
            predicted = maps[j] > threshold
            fill = np.zeros(predicted.shape + (4,))
            fill[predicted] = (1.0, 0.0, 0.0, 0.35)
            ax.imshow(fill, interpolation="nearest")
            _outline(ax, predicted, _PREDICTION_COLOR, linewidths=1.2)
        if masks is not None:
            ax = axes[1 if threshold is None else 2, j]
            _outline(ax, masks[j], _TRUTH_COLOR, linewidths=1.2, linestyles="dashed")
        for ax in axes[:, j]:
            ax.set_xticks([])
            ax.set_yticks([])

    axes[0, 0].set_ylabel("image")
    axes[1, 0].set_ylabel("map on reconstruction" if reconstructions is not None else "map")
    if threshold is not None:
        label = f"map > {threshold:.3g}"
        if masks is not None:
            label += "\n(green: truth)"
        axes[2, 0].set_ylabel(label)
    # The colour bar shows the colormap opaque, not blended like the overlays.
    opaque = ScalarMappable(norm=mappable.norm, cmap=mappable.cmap)
    colorbar = fig.colorbar(opaque, ax=axes[1, :].tolist(), shrink=0.9, label="anomaly")
    if threshold is not None and vmin <= threshold <= vmax:
        colorbar.ax.axhline(threshold, color=_PREDICTION_COLOR, linewidth=2)
    return fig

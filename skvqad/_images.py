"""Turn what users pass as images into the float32 NCHW arrays the net eats.

Kept apart from the estimator so that ``fit``/``score_samples`` read as the
method, not as input plumbing. Never modifies the caller's array.
"""

from __future__ import annotations

import os
import sys
import warnings
from numbers import Integral
from pathlib import Path

import numpy as np
import sklearn
from sklearn.utils import check_array, column_or_1d

__all__ = [
    "DataRangeWarning",
    "check_images",
    "check_fitted_images",
    "inlier_mask",
    "image_shape_of",
    "is_tabular",
    "to_unit_images",
    "count_clipped",
    "warn_clipped",
    "UnitImages",
]


class DataRangeWarning(UserWarning):
    """Float input had values outside ``[0, 1]`` and was clipped.

    Examples
    --------
    Turn the warning into an error to reject out-of-range images:

    >>> import warnings
    >>> import numpy as np
    >>> from skvqad import DataRangeWarning, VQVAEAnomalyDetector
    >>> X = np.full((16, 8, 8), 255.0)  # 8-bit intensities stored as float
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", DataRangeWarning)
    ...     VQVAEAnomalyDetector(device="cpu").fit(X)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    skvqad._images.DataRangeWarning: 1024 of 1024 values of X lie outside [0, 1] ...
    """


#: Integer image types that are scaled to [0, 1] by their maximum value.
_SCALED_DTYPES = (np.uint8, np.uint16)


def is_tabular(ndim: int, image_shape) -> bool:
    """Whether input of ``ndim`` dimensions is tabular: 2-D with no ``image_shape`` to
    read it as images.

    Tabular data is min-max scaled per feature and has no integer bit depth; the
    detector, the transformers and :func:`check_images` all ask this one function.

    Examples
    --------
    >>> from skvqad._images import is_tabular
    >>> is_tabular(2, None), is_tabular(2, (8, 8)), is_tabular(3, None)
    (True, False, False)
    """
    return ndim == 2 and image_shape is None


def image_shape_of(X: np.ndarray, image_shape) -> tuple[int, int, int]:
    """``(H, W, C)`` of the images in the validated array ``X``.

    ``X`` is 2-D (flat rows), 3-D ``(n, H, W)`` or 4-D ``(n, H, W, C)``.
    Flat rows are reshaped to ``image_shape`` when it is given, else each row
    is taken as one image of 1 x d pixels.

    Parameters
    ----------
    X : ndarray of shape (n, d), (n, H, W) or (n, H, W, C)
        Validated images.
    image_shape : tuple of int or None
        ``(H, W)`` or ``(H, W, C)``; needed to reshape flat rows, checked
        against ``X`` otherwise.

    Returns
    -------
    tuple of int
        ``(H, W, C)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skvqad._images import image_shape_of
    >>> image_shape_of(np.zeros((5, 8, 6)), None)
    (8, 6, 1)
    >>> image_shape_of(np.zeros((5, 48)), (8, 6))
    (8, 6, 1)
    >>> image_shape_of(np.zeros((5, 48)), None)  # tabular rows
    (1, 48, 1)
    """
    if X.ndim == 2:
        n_features = X.shape[1]
        if image_shape is None:
            return (1, n_features, 1)
        shape = tuple(int(s) for s in image_shape)
        if len(shape) == 2:
            shape = shape + (1,)
        if int(np.prod(shape)) != n_features:
            raise ValueError(
                f"X has {n_features} features per sample, which cannot be reshaped to "
                f"image_shape={tuple(image_shape)} ({int(np.prod(shape))} values)."
            )
        return shape
    if X.ndim == 3:
        shape = (X.shape[1], X.shape[2], 1)
    elif X.ndim == 4:
        shape = X.shape[1:]
        height, channels = X.shape[1], X.shape[3]
        if channels > 4 and height <= 4:
            raise ValueError(
                f"X has shape {X.shape}, which looks channels-first (n, C, H, W); "
                "images must be channels-last (n, H, W, C): use np.moveaxis(X, 1, -1)."
            )
    else:
        raise ValueError(
            f"X must be 2-D (n, d), 3-D (n, H, W) or 4-D (n, H, W, C); got {X.ndim}-D "
            f"data of shape {X.shape}."
        )
    if image_shape is not None:
        given = tuple(int(s) for s in image_shape)
        if given != shape and given + (1,) != shape:
            raise ValueError(
                f"X holds images of shape {shape[:2] if shape[2] == 1 else shape}, "
                f"but image_shape={tuple(image_shape)}."
            )
    if 0 in shape:
        raise ValueError(f"X holds empty images of shape {shape}.")
    return tuple(int(s) for s in shape)


def check_images(
    X, *, image_shape=None, estimator=None, integer_bits=None
) -> tuple[np.ndarray, tuple]:
    """Validate image input: numeric, finite, non-empty, 2-D to 4-D.

    Integer images of another type than ``uint8``/``uint16`` (``int64``, as
    NumPy makes from Python ints, ``int32``, ``uint32``, ...) are read as
    8-bit if all their values lie in 0..255 and as 16-bit if they lie in
    0..65535 (returned as a ``uint8``/``uint16`` copy), or at the depth
    ``integer_bits`` when it is given (the one ``fit`` saw); other integer
    values raise a ``ValueError``: integers are never clipped. Tabular rows
    (2-D ``X`` without ``image_shape``) are min-max scaled later and keep their type.

    Parameters
    ----------
    X : array-like of shape (n, d), (n, H, W) or (n, H, W, C)
    image_shape : tuple of int or None
        ``(H, W)`` or ``(H, W, C)`` of flat 2-D input.
    estimator : estimator or None
        Named in error messages.
    integer_bits : {8, 16} or None
        The depth to read such integer images at, whatever their values
        (so that a dark batch of 16-bit images is not read as 8-bit);
        :func:`integer_bits_of` the images ``fit`` validated.

    Returns
    -------
    X : ndarray
        The validated array (possibly ``X`` itself: do not modify it).
    shape : tuple (H, W, C)
        Shape of one image.

    Examples
    --------
    >>> from skvqad._images import check_images
    >>> X, shape = check_images([[[0, 1, 2], [3, 4, 5]]])
    >>> X.shape, X.dtype, shape
    ((1, 2, 3), dtype('uint8'), (2, 3, 1))
    """
    if image_shape is not None and (
        len(image_shape) not in (2, 3)
        or not all(isinstance(s, Integral) and s > 0 for s in image_shape)
    ):
        raise ValueError(
            f"image_shape must be (H, W) or (H, W, C) of positive ints, got {image_shape!r}."
        )
    if isinstance(X, (list, tuple)) and len(X) > 1:
        shapes = {np.shape(image) for image in X}
        if len(shapes) > 1:
            raise ValueError(
                f"All images of X must have the same size, got {len(shapes)} shapes "
                f"({', '.join(str(s) for s in sorted(shapes)[:4])}{', ...' if len(shapes) > 4 else ''}): "
                "resize them first (skvqad.preprocessing.ImageResizer, or the loaders' image_size)."
            )
    X = check_array(
        X,
        dtype="numeric",
        allow_nd=True,
        ensure_all_finite=True,
        ensure_min_samples=1,
        estimator=estimator,
        input_name="X",
    )
    shape = image_shape_of(X, image_shape)
    other_integers = X.dtype.kind in "iu" and X.dtype.type not in _SCALED_DTYPES
    if other_integers and not is_tabular(X.ndim, image_shape):
        low, high = int(X.min()), int(X.max())
        limit = 65535 if integer_bits is None else 2**integer_bits - 1
        if low < 0 or high > limit:
            raise ValueError(
                f"X is an integer array ({X.dtype}) with values from {low} to {high}: integer "
                + ("images must hold 8-bit (0..255) or 16-bit (0..65535) intensities. "
                   if integer_bits is None else
                   f"images must hold {integer_bits}-bit intensities (0..{limit}), as the "
                   "images fit saw. ")
                + "Pass floats in [0, 1] for other data."
            )
        if integer_bits is None:
            integer_bits = 8 if high <= 255 else 16
        X = X.astype(np.uint8 if integer_bits == 8 else np.uint16)
    return X, shape


def check_fitted_images(X, estimator, integer_bits=None) -> np.ndarray:
    """:func:`check_images` for a fitted ``estimator``: ``X`` must match its images.

    ``estimator`` has ``image_shape``, ``image_shape_`` and
    ``n_features_in_``; a mismatch raises a ``ValueError`` that names what
    differs (the number of features, of channels, or the image size).
    Returns the validated ``X``, not yet converted.
    """
    X, shape = check_images(X, image_shape=estimator.image_shape, estimator=estimator,
                            integer_bits=integer_bits)
    fitted, name = estimator.image_shape_, type(estimator).__name__
    if shape == fitted:
        return X
    n_features = int(np.prod(shape))
    if np.ndim(X) == 2 and n_features != estimator.n_features_in_:
        raise ValueError(f"X has {n_features} features, but {name} is expecting "
                         f"{estimator.n_features_in_} features as input.")
    if shape[2] != fitted[2]:
        raise ValueError(f"X has {shape[2]} channel(s), but {name} was fitted on images "
                         f"with {fitted[2]} channel(s).")
    raise ValueError(f"X holds images of {shape[0]}x{shape[1]} pixels, but {name} was fitted "
                     f"on images of {fitted[0]}x{fitted[1]} pixels.")


def inlier_mask(y, n_samples: int, stacklevel: int = 2) -> np.ndarray:
    """The images a detector trains on when ``fit`` is given labels ``y``: ``y == 1``.

    Raises ``ValueError`` when ``y`` has another length than ``X`` or no
    1; warns (at ``stacklevel``) when it holds values besides 1 and -1.
    """
    y = column_or_1d(y, warn=True)
    if len(y) != n_samples:
        raise ValueError(f"X has {n_samples} samples but y has {len(y)}.")
    mask = y == 1
    if not mask.any():
        raise ValueError(
            "y has no sample equal to 1: when y is given, the detector trains on the "
            "images with y == 1 (normal) only."
        )
    others = set(np.unique(y).tolist()) - {1, -1}
    if others:
        warnings.warn(
            f"y holds values {sorted(others)} besides 1 (normal) and -1 (anomalous); "
            f"only the {int(mask.sum())} images with y == 1 are used for training.",
            UserWarning,
            stacklevel=stacklevel,
        )
    return mask


def integer_bits_of(X: np.ndarray) -> int | None:
    """8 or 16 for images that :func:`check_images` returned as ``uint8``/``uint16``, else None."""
    return {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(X.dtype)


def count_clipped(X: np.ndarray, feature_range=None) -> int:
    """How many values of ``X`` :func:`to_unit_images` clips with a warning.

    Examples
    --------
    >>> import numpy as np
    >>> from skvqad._images import count_clipped
    >>> count_clipped(np.array([[-0.5, 0.5, 2.0]])), count_clipped(np.array([[0, 255]], np.uint8))
    (2, 0)
    """
    if feature_range is not None or X.dtype == np.bool_ or X.dtype.type in _SCALED_DTYPES:
        return 0
    return int(np.count_nonzero((X < 0) | (X > 1)))


#: Source folders whose frames a warning skips to reach the user's line: this package's
#: and scikit-learn's (its fit wrappers, pipelines and searches call into skvqad).
_LIBRARY_FOLDERS = tuple(str(Path(m.__file__).resolve().parent) + os.sep
                         for m in (sys.modules[__package__], sklearn))


def _outside_stacklevel() -> int:
    """The ``stacklevel`` that makes the caller's warning name the first line outside skvqad
    and scikit-learn: the user's call, through generators and wrappers alike."""
    frame, level = sys._getframe(2), 2  # the frame of the caller's caller
    while frame is not None and frame.f_code.co_filename.startswith(_LIBRARY_FOLDERS):
        frame, level = frame.f_back, level + 1
    return level


def warn_clipped(outside: int, size: int, stacklevel: int | None = None) -> None:
    """Issue the :class:`DataRangeWarning` for ``outside`` clipped values of ``size``.

    ``stacklevel`` None names the first line outside skvqad and scikit-learn.
    """
    if stacklevel is None:
        stacklevel = _outside_stacklevel()
    warnings.warn(
        f"{outside} of {size} values of X lie outside [0, 1] and were clipped: float "
        "images are expected in [0, 1] (divide 8-bit images stored as float by 255, or "
        "pass them as uint8).",
        DataRangeWarning,
        stacklevel=stacklevel,
    )


def to_unit_images(
    X: np.ndarray, shape: tuple, feature_range=None, *, warn: bool = True
) -> np.ndarray:
    """Convert validated images to a new float32 ``(n, C, H, W)`` array in [0, 1].

    ``uint8`` (``uint16``) values are divided by 255 (65535); other types are
    cast to float and values outside ``[0, 1]`` are clipped with a
    :class:`DataRangeWarning`. With ``feature_range=(low, high)`` (per-feature
    arrays, for tabular 2-D input), ``X`` is min-max scaled to [0, 1] instead
    and clipped without a warning.

    Parameters
    ----------
    X : ndarray
        Images validated by :func:`check_images` (not modified).
    shape : tuple of int
        ``(H, W, C)`` of one image.
    feature_range : tuple of ndarray or None, default=None
        Per-feature ``(low, high)`` for min-max scaling.
    warn : bool, default=True
        Warn (:func:`warn_clipped`) when values were clipped; callers that
        convert batch by batch count with :func:`count_clipped` and warn once.

    Returns
    -------
    ndarray of shape (n, C, H, W), float32

    Examples
    --------
    >>> import numpy as np
    >>> from skvqad._images import to_unit_images
    >>> X = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    >>> to_unit_images(X, (2, 2, 1))
    array([[[[0. , 1. ],
             [0.2, 0.4]]]], dtype=float32)
    """
    if feature_range is not None:
        low, high = feature_range
        X = (X - low) / np.where(high > low, high - low, 1.0)
    # One copy, straight into a freshly allocated (n, C, H, W) array: its
    # strides are the canonical ones whatever X's were (torch picks its
    # convolution kernels by strides, so this keeps results bit-identical).
    height, width, channels = shape
    images = np.empty((len(X), channels, height, width), dtype=np.float32)
    images[...] = X.reshape((len(X),) + tuple(shape)).transpose(0, 3, 1, 2)
    if feature_range is not None:
        np.clip(images, 0.0, 1.0, out=images)
    elif X.dtype.type in _SCALED_DTYPES:
        images /= np.float32(np.iinfo(X.dtype).max)
    elif X.dtype != np.bool_:
        outside = np.count_nonzero((images < 0) | (images > 1))
        if outside:
            if warn:
                warn_clipped(outside, images.size)
            np.clip(images, 0.0, 1.0, out=images)
    return images


class UnitImages:
    """Validated images, converted to float32 ``(n, C, H, W)`` in [0, 1] one batch at a time.

    ``fit`` trains from this rather than from a converted copy of ``X``, so
    that a ``numpy.memmap`` of any size is read batch by batch and never
    held as floats (4 times the size of 8-bit images) in memory. Indexing
    returns the converted images of the selected rows (a new array), as
    :func:`to_unit_images` converts them, without warnings (``fit`` counts
    clipped values with :meth:`count_clipped` and warns once).

    Parameters
    ----------
    X : ndarray
        Images validated by :func:`check_images` (kept as is, not copied).
    shape : tuple of int
        ``(H, W, C)`` of one image.
    feature_range : tuple of ndarray or None, default=None
        Per-feature ``(low, high)`` for tabular rows.

    Examples
    --------
    >>> import numpy as np
    >>> from skvqad._images import UnitImages
    >>> images = UnitImages(np.full((5, 2, 2), 255, np.uint8), (2, 2, 1))
    >>> len(images), images[[0, 3]].shape, float(images[1:2].max())
    (5, (2, 1, 2, 2), 1.0)
    """

    def __init__(self, X: np.ndarray, shape: tuple, feature_range=None):
        self.X = X
        self.shape = tuple(shape)
        self.feature_range = feature_range

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, index) -> np.ndarray:
        return to_unit_images(self.X[index], self.shape, self.feature_range, warn=False)

    def count_clipped(self, chunk: int = 4096) -> int:
        """:func:`count_clipped` over all images, ``chunk`` images at a time."""
        return sum(
            count_clipped(self.X[start : start + chunk], self.feature_range)
            for start in range(0, len(self.X), chunk)
        )

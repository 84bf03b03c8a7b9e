"""Image transformers for pipelines in front of :class:`VQVAEAnomalyDetector`.

* :class:`IntensityScaler`: scale intensities to [0, 1];
* :class:`Grayscale`: RGB to one luminance channel;
* :class:`ImageResizer`: resize to a fixed size (antialiased bilinear).

They take images in the layouts the detector takes: ``(n, H, W)``,
``(n, H, W, C)`` or flat ``(n, H * W * C)`` with ``image_shape``, and return
the same layout (flat stays flat, so the next step needs the new
``image_shape``). They follow scikit-learn's transformer API and pass its
estimator checks; ``set_output`` and feature names do not apply to images and
are not provided.

Examples
--------
>>> import numpy as np
>>> from sklearn.pipeline import make_pipeline
>>> from skvqad import VQVAEAnomalyDetector
>>> from skvqad.preprocessing import Grayscale, ImageResizer
>>> X = np.random.default_rng(0).integers(0, 256, size=(16, 20, 24, 3), dtype=np.uint8)
>>> pipe = make_pipeline(
...     Grayscale(), ImageResizer(16),
...     VQVAEAnomalyDetector(hidden_channels=8, embedding_dim=4, n_embeddings=8,
...                          n_residual_layers=1, max_epochs=1, random_state=0,
...                          device="cpu"),
... ).fit(X)
>>> pipe[-1].anomaly_map(pipe[:-1].transform(X[:2])).shape
(2, 16, 16)
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._docstrings import fill_doc
from ._images import check_images, integer_bits_of, is_tabular
from ._resize import resize_images, restore_dtype

__all__ = ["IntensityScaler", "Grayscale", "ImageResizer"]

#: Docstring pieces of the transformers, filled in by ``_fill_doc``.
_DOC_PIECES = {
    "image_shape": [
        "image_shape : tuple of int or None, default=None",
        "``(H, W)`` or ``(H, W, C)`` of flat 2-D input.",
    ],
    "n_features_in_": [
        "n_features_in_ : int",
        "Values per image seen in ``fit`` (the transformer works unfitted).",
    ],
    "integer_bits_": [
        "integer_bits_ : {8, 16} or None",
        "Bit depth of the integer images seen in ``fit``, at which integer",
        "images of types other than ``uint8``/``uint16`` are read afterwards",
        "(unfitted: by their values); None for float images and",
        "tabular rows.",
    ],
}
_fill_doc = fill_doc(_DOC_PIECES)


class _ImageTransformer(TransformerMixin, BaseEstimator):
    """Validation and output layout shared by the image transformers."""

    #: Whether ``transform`` reads integer images at the depth ``fit`` saw: needed where the
    #: output keeps the input's depth, not where it depends on the values alone.
    _pins_integer_bits = True

    def _images(self, X, *, reset: bool) -> tuple[np.ndarray, int]:
        """``X`` as an ``(n, H, W, C)`` view, and its number of dimensions.

        With ``reset`` (in ``fit``) nothing is recorded: ``fit`` calls :meth:`_record`
        once it has succeeded, so a failing ``fit`` leaves the last fit whole.
        """
        # Integer images of types other than uint8/uint16 are read at the depth fit saw
        # (when fitted: these transformers also transform unfitted).
        pinned = self._pins_integer_bits and not reset
        X, shape = check_images(
            X, image_shape=self.image_shape, estimator=self,
            integer_bits=getattr(self, "integer_bits_", None) if pinned else None,
        )
        n_features = int(np.prod(shape))
        if not reset and hasattr(self, "n_features_in_") and n_features != self.n_features_in_:
            raise ValueError(
                f"X has {n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        return X.reshape((len(X),) + shape), X.ndim

    def _record(self, images: np.ndarray, ndim: int) -> None:
        """Set ``n_features_in_`` (and ``integer_bits_``) from the images ``fit`` read."""
        self.n_features_in_ = int(np.prod(images.shape[1:]))
        if self._pins_integer_bits:
            tabular = is_tabular(ndim, self.image_shape)  # of the input, not of (n, H, W, C)
            self.integer_bits_ = None if tabular else integer_bits_of(images)
        else:  # not a stale depth from an earlier fit with other parameters
            self.__dict__.pop("integer_bits_", None)

    @staticmethod
    def _layout(images: np.ndarray, ndim: int) -> np.ndarray:
        """``(n, H, W, C)`` back to the input's layout."""
        if ndim == 2:
            return images.reshape(len(images), -1)
        if ndim == 3 and images.shape[-1] == 1:
            return images[..., 0]
        return images

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Check ``X`` and record ``n_features_in_`` (and ``integer_bits_``).

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, H, W, C) or (n, d)
            Images.
        y : None
            Ignored.

        Returns
        -------
        self

        Examples
        --------
        >>> import numpy as np
        >>> from skvqad.preprocessing import Grayscale, ImageResizer
        >>> X = np.zeros((2, 4, 5, 3), dtype=np.uint8)
        >>> Grayscale().fit(X).n_features_in_, ImageResizer(2).fit(X).n_features_in_
        (60, 60)
        """
        self._record(*self._images(X, reset=True))
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.requires_fit = False
        return tags


@_fill_doc
class IntensityScaler(_ImageTransformer):
    """Scale image intensities to [0, 1].

    One range for all pixels and channels (unlike
    :class:`~sklearn.preprocessing.MinMaxScaler`, which scales each feature,
    i.e. each pixel position, on its own and would erase the image).

    Parameters
    ----------
    in_range : "fit", "dtype" or tuple of float, default="fit"
        The intensities that map to 0 and 1: ``"fit"`` the minimum and
        maximum of the training images; ``"dtype"`` the range of an integer
        type (0-255 for ``uint8``; an error for floats); or ``(low, high)``.
    clip : bool, default=True
        Clip the result to [0, 1] (new images may exceed the training range).
    {image_shape}

    Attributes
    ----------
    data_min_, data_max_ : float
        The intensities mapped to 0 and 1.
    n_features_in_ : int
        Values per image.
    integer_bits_ : {8, 16} or None
        With ``in_range="dtype"`` only: the bit depth of the integer images
        seen in ``fit``, at which integer images of types other than
        ``uint8``/``uint16`` are read afterwards; None for float images.

    Examples
    --------
    >>> import numpy as np
    >>> from skvqad.preprocessing import IntensityScaler
    >>> IntensityScaler().fit_transform(np.array([[[0.0, 50.0], [100.0, 200.0]]]))
    array([[[0.  , 0.25],
            [0.5 , 1.  ]]], dtype=float32)
    """

    @property
    def _pins_integer_bits(self) -> bool:
        # With in_range="dtype" the depth is the range; otherwise the values and the range
        # alone decide the output, and clip=True promises to take values beyond fit's.
        return isinstance(self.in_range, str) and self.in_range == "dtype"

    _parameter_constraints: dict = {
        "in_range": [StrOptions({"fit", "dtype"}), tuple, list],
        "clip": ["boolean"],
        "image_shape": [tuple, list, None],
    }

    def __init__(self, in_range="fit", clip: bool = True, image_shape=None):
        self.in_range = in_range
        self.clip = clip
        self.image_shape = image_shape

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the intensity range.

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, H, W, C) or (n, d)
            Images.
        y : None
            Ignored.

        Returns
        -------
        self

        Examples
        --------
        >>> import numpy as np
        >>> from skvqad.preprocessing import IntensityScaler
        >>> X = np.array([[[10, 20], [30, 200]]], dtype=np.uint8)
        >>> scaler = IntensityScaler().fit(X)
        >>> scaler.data_min_, scaler.data_max_
        (10.0, 200.0)
        >>> scaler = IntensityScaler(in_range="dtype").fit(X)
        >>> scaler.data_min_, scaler.data_max_
        (0.0, 255.0)
        """
        images, ndim = self._images(X, reset=True)
        if isinstance(self.in_range, str) and self.in_range == "fit":
            low, high = images.min(), images.max()
        elif isinstance(self.in_range, str):
            if not np.issubdtype(images.dtype, np.integer):
                raise ValueError(
                    f"in_range='dtype' needs integer images, got {images.dtype}; "
                    "use in_range='fit' or (low, high)."
                )
            low, high = np.iinfo(images.dtype).min, np.iinfo(images.dtype).max
        else:
            if len(self.in_range) != 2 or not self.in_range[0] < self.in_range[1]:
                raise ValueError(f"in_range must be (low, high) with low < high, got {self.in_range}.")
            low, high = self.in_range
        self._record(images, ndim)
        self.data_min_, self.data_max_ = float(low), float(high)
        return self

    def transform(self, X):
        """Scale ``X`` to [0, 1] as float32.

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, H, W, C) or (n, d)
            Images.

        Returns
        -------
        ndarray of float32, in the layout of ``X``

        Examples
        --------
        >>> import numpy as np
        >>> from skvqad.preprocessing import IntensityScaler
        >>> scaler = IntensityScaler(in_range=(0, 100), image_shape=(1, 3)).fit(np.zeros((1, 3)))
        >>> scaler.transform(np.array([[25.0, 50.0, 150.0]]))  # flat in, flat out; clipped
        array([[0.25, 0.5 , 1.  ]], dtype=float32)
        """
        check_is_fitted(self)
        images, ndim = self._images(X, reset=False)
        span = self.data_max_ - self.data_min_
        out = ((images - self.data_min_) / (span if span > 0 else 1.0)).astype(np.float32)
        if self.clip:
            np.clip(out, 0.0, 1.0, out=out)
        return self._layout(out, ndim)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


@_fill_doc
class Grayscale(_ImageTransformer):
    """Convert RGB(A) images to one luminance channel.

    ``L = 0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601, as Pillow's ``"L"``
    mode); an alpha channel is dropped; one-channel images pass unchanged.
    The output keeps the input's dtype (integers rounded) and is
    ``(n, H, W)`` for image input, ``(n, H * W)`` for flat input.

    Parameters
    ----------
    {image_shape}

    Attributes
    ----------
    {n_features_in_}
    {integer_bits_}

    Examples
    --------
    >>> import numpy as np
    >>> from skvqad.preprocessing import Grayscale
    >>> Grayscale().fit_transform(np.full((1, 2, 2, 3), 255, dtype=np.uint8))
    array([[[255, 255],
            [255, 255]]], dtype=uint8)
    """

    _parameter_constraints: dict = {"image_shape": [tuple, list, None]}

    #: Luma weights of ITU-R BT.601.
    WEIGHTS = (0.299, 0.587, 0.114)

    def __init__(self, image_shape=None):
        self.image_shape = image_shape

    def transform(self, X):
        """Luminance of each image.

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, H, W, C) or (n, d)
            Images with 1, 3 or 4 (RGBA) channels.

        Returns
        -------
        ndarray of shape (n, H, W), or (n, H * W) for flat input

        Examples
        --------
        >>> import numpy as np
        >>> from skvqad.preprocessing import Grayscale
        >>> red_green = np.array([[[[255, 0, 0], [0, 255, 0]]]], dtype=np.uint8)
        >>> Grayscale().transform(red_green)
        array([[[ 76, 150]]], dtype=uint8)
        """
        images, ndim = self._images(X, reset=False)
        channels = images.shape[-1]
        if channels not in (1, 3, 4):
            raise ValueError(f"Grayscale needs 1, 3 or 4 (RGBA) channels, got {channels}.")
        if channels > 1:
            luma = images[..., :3].astype(np.float64) @ np.array(self.WEIGHTS)
            images = restore_dtype(luma, images.dtype)[..., None]
        return self._layout(images, min(ndim, 3))


@_fill_doc
class ImageResizer(_ImageTransformer):
    """Resize images to a fixed size (bilinear, antialiased when shrinking).

    Uses :func:`torch.nn.functional.interpolate` with ``antialias=True``
    (already a dependency; batched and fast), so no extra image library is
    needed; the loaders of :mod:`skvqad.datasets` resize with the same code,
    so ``image_size=`` there and this transformer give the same pixels.
    The output keeps the input's dtype (integers rounded) and layout.

    Parameters
    ----------
    size : int or tuple of int
        ``(height, width)`` of the output, or one int for square images.
    {image_shape}

    Attributes
    ----------
    {n_features_in_}
    {integer_bits_}

    Examples
    --------
    >>> import numpy as np
    >>> from skvqad.preprocessing import ImageResizer
    >>> ImageResizer((2, 3)).fit_transform(np.ones((5, 8, 8))).shape
    (5, 2, 3)
    """

    _parameter_constraints: dict = {
        "size": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "image_shape": [tuple, list, None],
    }

    def __init__(self, size=32, image_shape=None):
        self.size = size
        self.image_shape = image_shape

    def transform(self, X):
        """Resize every image to ``size``.

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, H, W, C) or (n, d)
            Images.

        Returns
        -------
        ndarray of shape (n, h, w), (n, h, w, C) or (n, h * w * C)

        Examples
        --------
        >>> import numpy as np
        >>> from skvqad.preprocessing import ImageResizer
        >>> X = np.full((2, 8, 8, 3), 200, dtype=np.uint8)
        >>> out = ImageResizer((4, 6)).transform(X)
        >>> out.shape, out.dtype, np.unique(out)
        ((2, 4, 6, 3), dtype('uint8'), array([200], dtype=uint8))
        >>> ImageResizer(4, image_shape=(8, 8)).transform(np.ones((2, 64))).shape
        (2, 16)
        """
        size = (self.size, self.size) if isinstance(self.size, Integral) else tuple(self.size)
        if len(size) != 2 or not all(isinstance(s, Integral) and s > 0 for s in size):
            raise ValueError(f"size must be an int or (height, width), got {self.size!r}.")
        images, ndim = self._images(X, reset=False)
        out = resize_images(images, size)
        return self._layout(np.ascontiguousarray(out), ndim)

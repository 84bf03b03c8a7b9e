"""What a user would try first: anomaly scores on raw pixels, with scikit-learn alone.

Results tables show the VQ-VAE beside these, computed on the same split in
the same run, so that a reader sees what the network adds:

* :class:`KNNDistance`: distance to the k-th nearest training image;
* :class:`PCAReconstructionError`: squared error of the reconstruction from
  the principal components that keep 95 % of the variance;
* :class:`~sklearn.ensemble.IsolationForest` on the pixels.

:func:`pixel_baselines` returns the three, each behind a flattening step, so
that they take the same ``(n, H, W)`` or ``(n, H, W, C)`` images as
:class:`~skvqad.VQVAEAnomalyDetector` (``uint8`` divided by 255).
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin, _fit_context
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from .thresholds import CONTAMINATION_CONSTRAINT, offset_from_scores

__all__ = ["KNNDistance", "PCAReconstructionError", "pixel_baselines", "pca_residual_maps",
           "flatten_images"]


class _ThresholdMixin(OutlierMixin):
    """``decision_function`` and ``predict`` from ``score_samples`` and ``offset_``."""

    def _set_offset(self, train_scores: np.ndarray) -> None:
        self.offset_ = offset_from_scores(train_scores, self.contamination)

    def decision_function(self, X) -> np.ndarray:
        """``score_samples(X) - offset_``: negative for outliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X) -> np.ndarray:
        """+1 for inliers, -1 for outliers (``decision_function < 0``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,), int
        """
        return np.where(self.decision_function(X) < 0, -1, 1)


class KNNDistance(_ThresholdMixin, BaseEstimator):
    """Minus the distance to the k-th nearest training sample (higher = more normal).

    The "largest" k-NN outlier score of Ramaswamy et al. (2000), as PyOD's
    ``KNN`` computes by default, in scikit-learn's outlier-detector API.

    Parameters
    ----------
    n_neighbors : int, default=5
        k.
    contamination : "auto" or float, default="auto"
        Fraction of training samples placed below ``offset_`` (``"auto"``:
        1 %), the training samples scored as ``score_samples`` scores them
        (each is one of its own k neighbours, as in IsolationForest's fit).
    n_jobs : int or None, default=None
        Passed to :class:`~sklearn.neighbors.NearestNeighbors`.

    Attributes
    ----------
    nn_ : sklearn.neighbors.NearestNeighbors
        The index of the training samples.
    offset_ : float
        Threshold of ``decision_function``.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from skvqad.baselines import KNNDistance
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]])
    >>> KNNDistance(n_neighbors=2).fit(X).score_samples([[2.2], [10.0]]).round(3)
    array([-0.8, -6. ])
    """

    _parameter_constraints: dict = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "contamination": CONTAMINATION_CONSTRAINT,
        "n_jobs": [Integral, None],
    }

    def __init__(self, n_neighbors: int = 5, contamination="auto", n_jobs=None):
        self.n_neighbors = n_neighbors
        self.contamination = contamination
        self.n_jobs = n_jobs

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Index the training samples.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Normal samples; needs more than ``n_neighbors`` of them.
        y : None
            Ignored.

        Returns
        -------
        self : KNNDistance
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        if len(X) <= self.n_neighbors:
            raise ValueError(
                f"KNNDistance needs more training samples than n_neighbors={self.n_neighbors}, "
                f"got n_samples={len(X)}."
            )
        self.nn_ = NearestNeighbors(n_neighbors=self.n_neighbors, n_jobs=self.n_jobs).fit(X)
        self._set_offset(self.score_samples(X))
        return self

    def score_samples(self, X) -> np.ndarray:
        """Minus the distance of each sample to its k-th nearest training sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        distances, _ = self.nn_.kneighbors(X)
        return -distances[:, -1]


class PCAReconstructionError(_ThresholdMixin, BaseEstimator):
    """Minus the squared error of each sample's PCA reconstruction.

    Parameters
    ----------
    n_components : int or float, default=0.95
        Passed to :class:`~sklearn.decomposition.PCA`: a float in (0, 1) keeps
        the components that explain that fraction of the training variance.
    contamination : "auto" or float, default="auto"
        Fraction of training samples placed below ``offset_`` (``"auto"``: 1 %).
    random_state : int, RandomState instance or None, default=None
        Passed to :class:`~sklearn.decomposition.PCA`.

    Attributes
    ----------
    pca_ : sklearn.decomposition.PCA
        The fitted PCA.
    offset_ : float
        Threshold of ``decision_function``.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from skvqad.baselines import PCAReconstructionError
    >>> rng = np.random.default_rng(0)
    >>> X = np.outer(rng.normal(size=50), [1.0, 1.0])  # on the line y = x
    >>> pca = PCAReconstructionError(n_components=1).fit(X)
    >>> pca.score_samples([[2.0, 2.0], [1.0, -1.0]]).round(6)
    array([-0., -2.])
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"),
                         Interval(Real, 0, 1, closed="neither")],
        "contamination": CONTAMINATION_CONSTRAINT,
        "random_state": ["random_state"],
    }

    def __init__(self, n_components=0.95, contamination="auto", random_state=None):
        self.n_components = n_components
        self.contamination = contamination
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the PCA on normal samples.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        self : PCAReconstructionError
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        self.pca_ = PCA(n_components=self.n_components, random_state=self.random_state).fit(X)
        self._set_offset(self._scores(X))
        return self

    def _scores(self, X):
        residual = X - self.pca_.inverse_transform(self.pca_.transform(X))
        return -np.einsum("ij,ij->i", residual, residual, dtype=np.float64)

    def score_samples(self, X) -> np.ndarray:
        """Minus the squared reconstruction error of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        return self._scores(validate_data(self, X, dtype=[np.float64, np.float32], reset=False))


def flatten_images(X) -> np.ndarray:
    """``(n, ...)`` images as ``(n, d)`` float32 rows; ``uint8`` divided by 255.

    Parameters
    ----------
    X : array-like of shape (n, H, W), (n, H, W, C) or (n, d)

    Returns
    -------
    ndarray of shape (n, d), float32

    Examples
    --------
    >>> import numpy as np
    >>> from skvqad.baselines import flatten_images
    >>> flatten_images(np.full((2, 2, 2), 255, np.uint8))
    array([[1., 1., 1., 1.],
           [1., 1., 1., 1.]], dtype=float32)
    """
    X = np.asarray(X)
    scale = 255.0 if X.dtype == np.uint8 else 1.0
    return (X.reshape(len(X), -1).astype(np.float32) / np.float32(scale))


def pca_residual_maps(X_train, X, n_components=0.95, random_state=0) -> np.ndarray:
    """A pixel map baseline: the squared error of each pixel's PCA reconstruction.

    A PCA of the training images' pixels (:func:`flatten_images`) keeps
    ``n_components``; each image of ``X`` is projected and reconstructed, and
    its per-value squared residual, averaged over the channels, is its map:
    the simple thing to put beside an anomaly map (the pixels that the normal
    images' main modes of variation do not explain).

    Parameters
    ----------
    X_train : array-like of shape (n, H, W) or (n, H, W, C)
        Normal images (``uint8`` or floats in [0, 1]).
    X : array-like of shape (m, H, W) or (m, H, W, C)
        Images of the same shape to map.
    n_components : int or float, default=0.95
        Passed to :class:`~sklearn.decomposition.PCA` (a float: that
        fraction of the training variance).
    random_state : int, RandomState instance or None, default=0
        Passed to :class:`~sklearn.decomposition.PCA`.

    Returns
    -------
    ndarray of shape (m, H, W), float32
        Higher = more anomalous.

    Examples
    --------
    >>> import numpy as np
    >>> from skvqad.baselines import pca_residual_maps
    >>> rng = np.random.default_rng(0)
    >>> normal = np.repeat(rng.uniform(0.3, 0.7, size=(40, 1, 1)), 16, axis=1).reshape(40, 4, 4)
    >>> odd = normal[:1].copy()
    >>> odd[0, 1, 2] = 1.0
    >>> m = pca_residual_maps(normal, odd, n_components=1)
    >>> m.shape, [int(i) for i in np.unravel_index(m[0].argmax(), m[0].shape)]
    ((1, 4, 4), [1, 2])
    """
    X = np.asarray(X)
    if X.ndim not in (3, 4) or X.shape[1:] != np.shape(X_train)[1:]:
        raise ValueError(f"X and X_train must hold images of one shape, (n, H, W) or "
                         f"(n, H, W, C): got X of shape {X.shape} and X_train of shape "
                         f"{np.shape(X_train)}.")
    train, test = flatten_images(X_train), flatten_images(X)
    pca = PCA(n_components=n_components, random_state=random_state).fit(train)
    residual = (test - pca.inverse_transform(pca.transform(test))) ** 2
    channels = X.shape[3] if X.ndim == 4 else 1
    return residual.reshape(len(X), X.shape[1], X.shape[2], channels).mean(axis=-1)


def pixel_baselines(random_state=0) -> dict[str, Pipeline]:
    """The three pixel baselines, each a pipeline that flattens images first.

    Parameters
    ----------
    random_state : int, RandomState instance or None, default=0
        Seeds the PCA solver and the isolation forest.

    Returns
    -------
    dict of str to sklearn.pipeline.Pipeline
        ``"knn"`` (:class:`KNNDistance`, k=5), ``"pca"``
        (:class:`PCAReconstructionError`, 95 % of the variance) and
        ``"iforest"`` (:class:`~sklearn.ensemble.IsolationForest`), unfitted;
        each has ``fit`` and ``score_samples`` (higher = more normal).

    Examples
    --------
    >>> import numpy as np
    >>> from skvqad.baselines import pixel_baselines
    >>> rng = np.random.default_rng(0)
    >>> normal = rng.uniform(0.4, 0.6, size=(50, 4, 4))
    >>> odd = rng.uniform(0.0, 1.0, size=(5, 4, 4))
    >>> for name, model in pixel_baselines().items():
    ...     scores = model.fit(normal).score_samples
    ...     print(name, bool(scores(odd).max() < scores(normal).min()))
    knn True
    pca True
    iforest True
    """
    def flat():
        return FunctionTransformer(flatten_images)

    return {
        "knn": make_pipeline(flat(), KNNDistance(n_neighbors=5)),
        "pca": make_pipeline(flat(), PCAReconstructionError(0.95, random_state=random_state)),
        "iforest": make_pipeline(flat(), IsolationForest(random_state=random_state)),
    }

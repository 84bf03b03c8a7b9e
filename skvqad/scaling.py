"""Scoring collections of images larger than one machine's patience, on a Dask cluster.

Training runs on one device; scoring is embarrassingly parallel. With a
fitted detector and a :class:`dask.array.Array` of images (any chunking
along the images; each chunk holds whole images), :func:`score_samples_dask`
maps the detector's scoring over the chunks on whatever Dask scheduler is
active, a :class:`distributed.Client` included. The detector enters the task
graph as one key, so each worker receives it once, not once per chunk.
Needs the ``dask`` extra (``pip install "skvqad[dask]"``).
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = ["score_samples_dask"]

_METHODS = {"score_samples": np.float64, "decision_function": np.float64, "predict": np.int64}


def _score_block(block, detector, method):
    return getattr(detector, method)(block).astype(_METHODS[method], copy=False)


def score_samples_dask(detector, X, method: str = "score_samples"):
    """Score a Dask array of images chunk by chunk with a fitted detector.

    Parameters
    ----------
    detector : VQVAEAnomalyDetector
        A fitted detector (any estimator with ``method`` works).
    X : dask.array.Array or array-like of shape (n, H, W), (n, H, W, C) or (n, d)
        The images; chunks along the first axis are scored as they are,
        other axes are merged so that each chunk holds whole images. A NumPy
        array or memmap is wrapped with :func:`dask.array.from_array` in
        chunks of ``detector.batch_size`` images.
    method : {"score_samples", "decision_function", "predict"}, default="score_samples"
        What to compute for each image.

    Returns
    -------
    dask.array.Array of shape (n,)
        Lazy: ``.compute()`` runs it on the active scheduler. float64 scores,
        or int labels for ``"predict"``; equal to ``getattr(detector, method)(X)``.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from skvqad import VQVAEAnomalyDetector
    >>> from skvqad.scaling import score_samples_dask
    >>> X = np.random.default_rng(0).uniform(0.4, 0.6, size=(16, 8, 8))
    >>> detector = VQVAEAnomalyDetector(
    ...     n_embeddings=8, embedding_dim=4, hidden_channels=8, n_residual_layers=1,
    ...     max_epochs=1, random_state=0, device="cpu",
    ... ).fit(X)
    >>> scores = score_samples_dask(detector, da.from_array(X, chunks=(5, 8, 8)))
    >>> scores.numblocks, bool(np.allclose(scores.compute(), detector.score_samples(X)))
    ((4,), True)
    """
    import dask
    import dask.array as da

    if method not in _METHODS:
        raise ValueError(f"method must be one of {sorted(_METHODS)}, got {method!r}.")
    check_is_fitted(detector)
    if not isinstance(X, da.Array):
        X = da.from_array(X, chunks=(getattr(detector, "batch_size", 128),) + np.shape(X)[1:])
    if X.ndim < 2:
        raise ValueError(f"X must hold images, (n, ...) with 2 to 4 axes; got {X.ndim} axis.")
    X = X.rechunk({axis: -1 for axis in range(1, X.ndim)})
    # One key of the graph holds the detector: shipped to each worker once.
    shipped = dask.delayed(detector, pure=True, traverse=False)
    return da.map_blocks(
        _score_block, X, shipped, method,
        drop_axis=list(range(1, X.ndim)), dtype=_METHODS[method],
        meta=np.empty((0,), dtype=_METHODS[method]),
    )

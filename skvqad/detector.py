"""The scikit-learn estimator: :class:`VQVAEAnomalyDetector`.

``fit`` validates the images and calls :func:`skvqad.net.train_net`, which
builds a :class:`~skvqad.net.VQVAENet` (skorch) around a
:class:`~skvqad.model.VQVAE` and runs skorch's ``fit``; the loss of each batch
is :class:`~skvqad.model.VQVAELoss`. ``score_samples`` validates the images
and hands them, batch by batch, to a ``skvqad._scoring.Scorer``, which
runs the net once per batch, turns its outputs into anomaly maps with
:func:`skvqad.maps.anomaly_maps` and pools each map into the image's score.
"""

from __future__ import annotations

import copy
import os
import warnings
from numbers import Integral, Real

import joblib
import numpy as np
import skorch
import torch
from sklearn.base import BaseEstimator, OutlierMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils.validation import check_is_fitted, check_memory

from . import _scoring
from ._docstrings import SCORING_PARAM_DOCS, X_FITTED_DOC, fill_doc
from ._images import (
    DataRangeWarning,
    UnitImages,
    check_fitted_images,
    check_images,
    count_clipped,
    inlier_mask,
    integer_bits_of,
    is_tabular,
    to_unit_images,
    warn_clipped,
)
from ._model_file import read_detector, write_detector
from ._scoring import (
    SCORING_CONSTRAINTS,
    Scorer,
    check_scoring_params,
    latent_statistics,
)
from ._version import __version__
from .model import reconstruction
from .net import CodebookRestart, build_net, resolve_device, train_net, training_code_digest
from .thresholds import CONTAMINATION_CONSTRAINT

__all__ = ["VQVAEAnomalyDetector", "SCORING_PARAMS"]

#: The detector's parameters that act at scoring time only: those that shape a
#: map (:data:`skvqad.maps.MAP_PARAMS`, same names, same defaults) and the
#: pooling of each map into a score. Changing them needs no retraining, they are
#: not part of the ``memory`` cache key, and
#: :meth:`VQVAEAnomalyDetector.score_samples_multi` accepts them.
SCORING_PARAMS = _scoring.SCORING_PARAMS


@fill_doc({**SCORING_PARAM_DOCS, **X_FITTED_DOC})
class VQVAEAnomalyDetector(OutlierMixin, BaseEstimator):
    """Image anomaly detection with a VQ-VAE and its inner metrics.

    A VQ-VAE is trained on normal images only. An image is scored by the
    mean of its anomaly map: the SSIM map between the image and its
    reconstruction, the alignment map (distance of each encoder output to its
    codebook vector) or, by default, their product (SSIM+AM), following
    Gangloff et al., "Leveraging Vector-Quantized Variational Autoencoder
    Inner Metrics for Anomaly Detection" (2022).

    The API follows scikit-learn's outlier detectors (see
    :class:`~sklearn.ensemble.IsolationForest`): ``score_samples`` is higher
    for more normal images, ``decision_function`` is negative for outliers and
    ``predict`` returns +1 for inliers and -1 for outliers.

    Parameters
    ----------
    n_embeddings : int, default=512
        Codebook size M.
    embedding_dim : int, default=256
        Dimension D of each codebook vector.
    hidden_channels : int, default=256
        Width of the encoder's and the decoder's convolutions.
    n_downsampling : int or "auto", default="auto"
        Number of stride-2 convolutions of the encoder. ``"auto"``: 2 for
        images whose smaller side is below 128 pixels (the paper's 32 px
        setting, an 8x8 latent grid), 3 otherwise (256 px, 32x32).
    n_residual_layers : int, default=3
        Residual blocks in the encoder and the decoder.
    beta : float, default=0.25
        Weight of the commitment term of the loss (eq. 4).
    loss_reduction : {"mean", "sum"}, default="mean"
        How each term of eq. 4 is reduced over an image's elements:
        ``"mean"`` averages each over its pixels or latent values (the loss
        does not grow with the image size), ``"sum"`` sums them as eq. 4 is
        written, which weighs the terms by their element counts
        (:class:`~skvqad.model.VQVAELoss`; measured in the user guide).
    codebook_restart : bool, default=True
        Draw the codebook from the encoder outputs of the first batch and,
        at the start of each epoch, re-draw the codes that the previous
        epoch left unused (:class:`~skvqad.net.CodebookRestart`), against
        codebook collapse. False keeps the paper's initialisation, uniform
        in ``[-1/M, 1/M]``, with which few codes stay in use (measured in the
        user guide's section "The training history").
    {score_map}
    {alignment}
    {ssim_window}
    {ssim_sigma}
    {ssim_constants}
    {channel_reduction}
    {dilation_radius}
    {ssim_dilation_radius}
    {prior_smoothing}
    {prior_radius}
    {score_pooling}
    bank_size : int, default=10000
        How many encoder outputs of the training images ``fit`` keeps in
        ``bank_`` for ``alignment="bank"``, drawn uniformly at random
        (seeded by ``random_state``) from all latent positions of all
        training images (all of them if there are fewer); 0 keeps none.
        It is drawn in the encoder pass that counts the codes
        (``code_counts_``) and takes ``bank_size * embedding_dim * 4`` bytes.
    contamination : "auto" or float, default="auto"
        Sets ``offset_``, the threshold of ``predict``, from the scores of
        the training images: a float in (0, 0.5] is the fraction of training
        images to place below it (``offset_`` is that percentile of the
        training scores, as in :class:`~sklearn.ensemble.IsolationForest`).
        ``"auto"`` takes the 1st percentile: the training images are all
        normal, so this asks for about 1 % false alarms on them (expect a
        few more on new normal images, which score a little lower than the
        images the network was trained on).
    image_shape : tuple of int or None, default=None
        ``(H, W)`` or ``(H, W, C)`` of the images when ``X`` is flat,
        ``(n, H * W * C)``. With ``None``, each row of a 2-D ``X`` is taken as
        an image of 1 x d pixels whose features are min-max scaled to [0, 1]
        with the ranges seen in ``fit`` (``feature_range_``): tabular data
        runs, as scikit-learn's common checks require, but for flattened
        images pass ``image_shape``.
    max_epochs : int, default=40
        Training epochs.
    batch_size : int, default=128
        Images per batch, for training and for scoring (set after ``fit``,
        it changes the scoring batches: memory on the device grows with it).
    lr : float, default=1e-3
        Learning rate.
    optimizer : torch optimizer class, default=torch.optim.Adam
        Passed to skorch.
    callbacks : list of skorch callbacks or None, default=None
        Extra skorch callbacks (or ``(name, callback)`` tuples), e.g.
        :class:`skorch.callbacks.LRScheduler`.
    device : str, default="auto"
        ``"auto"`` uses CUDA when available and the CPU otherwise; or any
        torch device string (``"cpu"``, ``"cuda"``, ``"cuda:1"``). The device
        in use is ``net_.device``: a detector trained on CUDA and loaded on a
        machine without a GPU moves to the CPU.
    mixed_precision : bool or "auto", default="auto"
        Run the network under bfloat16 autocast (the encoder's output, the
        codebook search, the loss and the maps stay in float32). ``"auto"``:
        on CUDA and on CPUs with native bfloat16
        (:func:`skvqad.net.cpu_has_native_bf16`), where it is faster;
        ``True`` on any device (many times slower on CPUs that emulate it);
        ``False`` never. The choice is resolved once, at ``fit``
        (``mixed_precision_``), and scoring keeps it wherever the detector is
        loaded, so that ``offset_`` stays on the scale of the scores.
    memory : str, path, joblib.Memory or None, default=None
        Caches the trained network (as :class:`~sklearn.pipeline.Pipeline`
        caches transformers): a folder path or a :class:`joblib.Memory`. The
        key is every parameter that changes the weights, a hash of the
        training images, a digest of the training code and the versions of
        skvqad, torch and skorch, so a refit that differs only in scoring
        parameters (``SCORING_PARAMS``) or ``contamination`` (a grid search
        over them, say) loads the network instead of training it again. The
        cache holds pickles: keep its folder writable by you only. Needs an
        int ``random_state`` to ever hit the cache.
    checkpoint_dir : str, path or None, default=None
        A folder where ``fit`` writes the whole training state at the end of
        each epoch (:class:`~skvqad.net.EpochCheckpoint`): a fit that was
        stopped (Ctrl-C, a killed job, the end of a session) and is started
        again with the same images and parameters resumes after its last
        completed epoch, and ends as a fit never stopped would (same
        weights, history and scores; at most one epoch of work is lost). A
        checkpoint of another fit there is refused with an error. Needs an
        int ``random_state`` to resume.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights' initialisation and the shuffling of the batches.
        With an int, results on the CPU are reproducible bit for bit.
    verbose : int, default=0
        0 is silent; 1 prints skorch's table of epochs (loss terms, codebook
        usage, duration) and a progress bar of the batches.

    Attributes
    ----------
    net_ : skvqad.net.VQVAENet
        The trained skorch net; ``net_.module_`` is the
        :class:`~skvqad.model.VQVAE`.
    mixed_precision_ : bool
        Whether the network trained, and scores, under bfloat16 autocast
        (``mixed_precision`` resolved at ``fit``).
    history_ : skorch.History
        Per-epoch ``train_loss``, ``train_nll``, ``train_alignment``,
        ``train_commitment``, ``codes_used`` and ``codebook_perplexity``.
    offset_ : float
        Threshold of ``decision_function``:
        ``decision_function = score_samples - offset_``.
    n_features_in_ : int
        Values per image, ``H * W * C``.
    image_shape_ : tuple of int
        ``(H, W, C)`` of the training images.
    n_downsampling_ : int
        The number of downsamplings used (``n_downsampling`` resolved).
    feature_range_ : tuple of ndarray or None
        Per-feature minimum and maximum of 2-D training data given without
        ``image_shape`` (see ``image_shape``); None for images.
    integer_bits_ : {8, 16} or None
        Bit depth of integer training images (``uint8``: 8, ``uint16``: 16,
        other integer types by their values); integer images of types other
        than ``uint8``/``uint16`` are read at this depth when scored. None
        for float images and tabular data.
    bank_ : ndarray of shape (k, embedding_dim), float32, or None
        The training encoder outputs kept for ``alignment="bank"`` (sent to
        the net's device when scoring); None when ``bank_size=0``.
    code_counts_ : ndarray of shape (h, w, n_embeddings), int64
        How many training images chose each code at each position of the
        latent grid: the code prior of the ``"prior"`` maps.
    score_calibration_ : dict of str to tuple of two floats
        For each map of ``score_map``'s choices, the mean and standard
        deviation of the training images' pooled scores (minus the image
        score, so higher = more anomalous), which standardise the maps of a
        fused ``score_map``. The prior's scores of the training images leave
        each image's own codes out of the counts
        (:func:`skvqad.maps.leave_one_out_prior_map`), as for a new image.
    calibration_params_ : dict
        The scoring parameters (but ``score_map``) under which
        ``score_calibration_`` was measured; a fused score needs the same.
    map_scale_ : float
        A fixed scale for showing the maps of ``score_map``: the 99th
        percentile, over the training images, of each image's highest map
        value (the command line's heat maps saturate there).

    Notes
    -----
    **Input.** ``X`` is ``(n, H, W)`` (grayscale), ``(n, H, W, C)``
    (channels-last) or flat ``(n, d)`` with ``image_shape``. ``uint8``
    images are divided by 255 (``uint16`` by 65535); float images are taken
    as intensities in [0, 1], and values outside are clipped with a
    :class:`~skvqad.DataRangeWarning` (the continuous Bernoulli likelihood is
    defined on [0, 1]). ``X`` itself is never modified. Any image size works:
    images are padded (edge pixels replicated) to a multiple of
    ``2 ** n_downsampling_`` inside the network, and every map is cropped
    back to the input size.

    **Labels.** When ``y`` is passed to ``fit``, only the images with
    ``y == 1`` (inliers, as ``predict`` labels them) are used for training,
    so that the detector can be cross-validated on labelled data
    (``y = -1`` for anomalies).

    **Post-processing.** The scoring parameters (``SCORING_PARAMS``: the
    map, its SSIM window, alignment, dilations, prior and pooling) act only
    when scoring: changing them with ``set_params`` after ``fit`` changes
    ``score_samples`` and ``anomaly_map`` at once, but ``offset_`` and the
    calibration of fused maps (``calibration_params_``) keep what ``fit``
    measured: :meth:`refit_threshold` measures them again without retraining.

    **Fused maps.** With a tuple ``score_map``, each map's score ``a`` (the
    pooled map: higher = more anomalous) becomes ``(a - mean) / std`` with
    the training images' mean and standard deviation of ``a``
    (``score_calibration_``), and ``score_samples`` is minus the largest of
    them. ``anomaly_map`` returns, for each image, the standardised map of
    the map that sets its score, so that its pooled value is still minus
    the score. (The parameter is ``score_map``, not ``score``: scikit-learn
    takes an attribute named ``score`` for the ``score(X, y)`` method, which
    ``GridSearchCV`` calls when ``scoring=None``.)

    See Also
    --------
    sklearn.ensemble.IsolationForest : The outlier-detector API this follows.
    skvqad.baselines.KNNDistance : A pixel baseline to compare with.
    skvqad.maps.anomaly_maps : How each map is computed from the network's outputs.
    skvqad.net.VQVAENet : The skorch net that ``fit`` trains.

    References
    ----------
    .. [1] H. Gangloff, M.-T. Pham, L. Courtrai and S. Lefèvre, "Leveraging
       Vector-Quantized Variational Autoencoder Inner Metrics for Anomaly
       Detection", 2022, HAL hal-03541964.

    Examples
    --------
    A tiny detector on random 8 x 8 images (the defaults are the paper's network):

    >>> import numpy as np
    >>> from skvqad import VQVAEAnomalyDetector
    >>> X = np.random.default_rng(0).uniform(0.4, 0.6, size=(16, 8, 8))
    >>> detector = VQVAEAnomalyDetector(
    ...     n_embeddings=8, embedding_dim=4, hidden_channels=8, n_residual_layers=1,
    ...     max_epochs=1, random_state=0, device="cpu",
    ... ).fit(X)
    >>> detector.image_shape_, detector.n_downsampling_, len(detector.history_)
    ((8, 8, 1), 2, 1)

    Scores are minus the mean of each anomaly map (higher = more normal);
    ``decision_function`` subtracts ``offset_``, below which the
    ``contamination`` (by default 1 %) of the training images fall, and
    ``predict`` labels the negative ones -1:

    >>> maps = detector.anomaly_map(X)
    >>> scores = detector.score_samples(X)
    >>> maps.shape, bool(np.allclose(scores, -maps.mean(axis=(1, 2))))
    ((16, 8, 8), True)
    >>> bool(np.allclose(detector.decision_function(X), scores - detector.offset_))
    True
    >>> detector.predict(X).tolist().count(-1)
    1
    """

    _parameter_constraints: dict = {
        "n_embeddings": [Interval(Integral, 1, None, closed="left")],
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "hidden_channels": [Interval(Integral, 1, None, closed="left")],
        "n_downsampling": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "n_residual_layers": [Interval(Integral, 0, None, closed="left")],
        "beta": [Interval(Real, 0, None, closed="left")],
        "loss_reduction": [StrOptions({"mean", "sum"})],
        "codebook_restart": ["boolean"],
        **SCORING_CONSTRAINTS,
        "bank_size": [Interval(Integral, 0, None, closed="left")],
        "contamination": CONTAMINATION_CONSTRAINT,
        "image_shape": [tuple, list, None],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "optimizer": [type, callable],
        "callbacks": [list, None],
        "device": [str, torch.device],
        "mixed_precision": ["boolean", StrOptions({"auto"})],
        "memory": [None, str, os.PathLike, HasMethods(["cache"])],
        "checkpoint_dir": [None, str, os.PathLike],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        n_embeddings: int = 512,
        embedding_dim: int = 256,
        hidden_channels: int = 256,
        n_downsampling: int | str = "auto",
        n_residual_layers: int = 3,
        beta: float = 0.25,
        loss_reduction: str = "mean",
        codebook_restart: bool = True,
        score_map: str | tuple = "ssim+am",
        alignment: str = "squared",
        ssim_window: int = 11,
        ssim_sigma: float = 1.5,
        ssim_constants: tuple | None = None,
        channel_reduction: str = "mean",
        dilation_radius: int = 2,
        ssim_dilation_radius: int = 0,
        prior_smoothing: float = 0.5,
        prior_radius: int = 0,
        score_pooling: str | float = "mean",
        bank_size: int = 10000,
        contamination: str | float = "auto",
        image_shape: tuple | None = None,
        max_epochs: int = 40,
        batch_size: int = 128,
        lr: float = 1e-3,
        optimizer=torch.optim.Adam,
        callbacks: list | None = None,
        device: str = "auto",
        mixed_precision: bool | str = "auto",
        memory=None,
        checkpoint_dir=None,
        random_state=None,
        verbose: int = 0,
    ):
        self.n_embeddings = n_embeddings
        self.embedding_dim = embedding_dim
        self.hidden_channels = hidden_channels
        self.n_downsampling = n_downsampling
        self.n_residual_layers = n_residual_layers
        self.beta = beta
        self.loss_reduction = loss_reduction
        self.codebook_restart = codebook_restart
        self.score_map = score_map
        self.alignment = alignment
        self.ssim_window = ssim_window
        self.ssim_sigma = ssim_sigma
        self.ssim_constants = ssim_constants
        self.channel_reduction = channel_reduction
        self.dilation_radius = dilation_radius
        self.ssim_dilation_radius = ssim_dilation_radius
        self.prior_smoothing = prior_smoothing
        self.prior_radius = prior_radius
        self.score_pooling = score_pooling
        self.bank_size = bank_size
        self.contamination = contamination
        self.image_shape = image_shape
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.callbacks = callbacks
        self.device = device
        self.mixed_precision = mixed_precision
        self.memory = memory
        self.checkpoint_dir = checkpoint_dir
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the VQ-VAE on normal images.

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, H, W, C) or (n, d)
            Training images; see the class Notes for types and ranges.
        y : array-like of shape (n,) or None, default=None
            Optional labels: when given, only the images with ``y == 1`` are
            used (``-1`` marks anomalies).

        Returns
        -------
        self : VQVAEAnomalyDetector
            The fitted detector.
        """
        # Atomic: if anything raises (bad input, a diverging loss, Ctrl-C), the
        # detector is left exactly as it was, fitted state included.
        state = self.__dict__.copy()
        try:
            return self._fit(X, y)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(state)
            raise

    def _fit(self, X, y):
        self._scoring_params()
        X, shape = check_images(X, image_shape=self.image_shape, estimator=self)
        if y is not None:
            X = X[inlier_mask(y, len(X), stacklevel=5)]  # the line that called fit
        # Tabular data (2-D, no image_shape) is min-max scaled per feature.
        self.feature_range_ = (
            (X.min(axis=0), X.max(axis=0)) if is_tabular(X.ndim, self.image_shape) else None
        )
        # Integer images of any type are uint8 or uint16 by now; scoring reads others as the same.
        self.integer_bits_ = integer_bits_of(X) if self.feature_range_ is None else None
        # Converted batch by batch while training: a memmap is never copied as floats.
        images = UnitImages(X, shape, self.feature_range_)
        outside = images.count_clipped()
        if outside:
            warn_clipped(outside, X.size)
        device = resolve_device(self.device)
        height, width, channels = shape
        n_downsampling = (
            (2 if min(height, width) < 128 else 3)
            if self.n_downsampling == "auto"
            else self.n_downsampling
        )
        net_params = self._net_params(channels, n_downsampling, device)
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        # With mixed_precision="auto", whether bf16 trains depends on the machine: the
        # choice is resolved here, once, for training and for every later scoring (so
        # that offset_ stays on the scale of the scores wherever the detector is loaded).
        bf16 = build_net(net_params).bf16_enabled
        net_params["bf16"] = bf16
        # The cache key's code version: a digest of the training code's source, so that an
        # edited model or loss never returns a stale network under an unchanged __version__.
        versions = (__version__, training_code_digest(), torch.__version__, skorch.__version__)
        if self.checkpoint_dir is not None and not isinstance(self.random_state, Integral):
            warnings.warn(
                "checkpoint_dir resumes a fit of the same seed: with a random_state that "
                "is not an int every fit draws a new seed, so a stopped fit cannot resume "
                "(its checkpoint is refused). Set an int random_state.",
                UserWarning,
                stacklevel=4,
            )
        train_args = (images, net_params, seed, versions)
        train_kwargs = dict(verbose=int(self.verbose), checkpoint_dir=self.checkpoint_dir)
        if self.memory is None:
            net = train_net(*train_args, **train_kwargs)
        else:  # the same call, its result cached on disk by joblib
            memory = self._check_memory()
            net = memory.cache(train_net, ignore=["verbose", "checkpoint_dir"])(
                *train_args, **train_kwargs)

        self.net_ = net
        self.history_ = net.history
        self.mixed_precision_ = bf16
        self.image_shape_ = shape
        self.n_features_in_ = height * width * channels
        self.n_downsampling_ = n_downsampling
        with warnings.catch_warnings():  # fit has warned of clipped values already
            warnings.simplefilter("ignore", DataRangeWarning)
            self.code_counts_, self.bank_ = latent_statistics(
                self.net_, self._iter_batches(X), len(X), self.bank_size, seed)
            self._calibrate(X, self.contamination, training=True)
        # refit_threshold knows the training images by it: their codes are in code_counts_.
        self._training_digest = joblib.hash(X)
        return self

    def _calibrate(self, X: np.ndarray, contamination, training: bool = False) -> None:
        """Set ``score_calibration_``, ``calibration_params_``, ``offset_`` and ``map_scale_``.

        From validated normal images ``X`` under the current scoring
        parameters (``skvqad._scoring.Scorer.calibrate``); ``training``:
        ``X`` are the images counted in ``code_counts_``.
        """
        fitted = self._scorer().calibrate(self._iter_batches(X), self._scoring_params(),
                                          contamination, training=training)
        self.__dict__.update(fitted)

    def refit_threshold(self, X, contamination=None):
        """Recompute ``offset_`` and ``score_calibration_`` without retraining.

        ``fit`` sets ``offset_``, the threshold of ``predict``, and the
        calibration of fused ``score_map`` values from the training images
        under the scoring parameters of that moment. After changing
        ``score_map``, ``alignment``, ``dilation_radius`` or another scoring
        parameter with ``set_params``, ``score_samples`` follows at once but
        ``offset_`` does not: call this to put it back on the scale of the
        new scores (and to calibrate the maps under the new parameters).
        Pass held-out normal images for a threshold that counts the false
        alarms on new normal images (which score a little lower), or the
        training images (the same array as given to ``fit``, after the
        ``y == 1`` selection): these are recognised by their digest and scored
        as ``fit`` scores them, each image's own codes left out of the prior,
        so that the result is what ``fit`` with the current parameters sets.

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, H, W, C) or (n, d)
            Normal images of the shape seen in ``fit``.
        contamination : "auto", float in (0, 0.5] or None, default=None
            The fraction of ``X`` to place below the threshold (``"auto"``:
            1 %); None uses the ``contamination`` parameter.

        Returns
        -------
        self : VQVAEAnomalyDetector
            With the new ``offset_``.
        """
        if contamination is None:
            contamination = self.contamination
        validate_parameter_constraints(
            {"contamination": self._parameter_constraints["contamination"]},
            {"contamination": contamination},
            caller_name=f"{type(self).__name__}.refit_threshold",
        )
        X = self._validate_for_predict(X)
        training = getattr(self, "_training_digest", None) == joblib.hash(X)
        self._calibrate(X, contamination, training=training)
        return self

    def _net_params(self, channels: int, n_downsampling: int, device: str) -> dict:
        """Arguments of :class:`VQVAENet`: everything that changes the weights."""
        return dict(
            module__in_channels=channels,
            module__hidden_channels=self.hidden_channels,
            module__embedding_dim=self.embedding_dim,
            module__n_embeddings=self.n_embeddings,
            module__n_downsampling=n_downsampling,
            module__n_residual_layers=self.n_residual_layers,
            criterion__beta=self.beta,
            # Only when not the default: the default's memory cache key stays as it was.
            **({"criterion__reduction": "sum"} if self.loss_reduction == "sum" else {}),
            optimizer=self.optimizer,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            # Copies: skorch initialises callbacks in place, the parameter stays as given.
            callbacks=copy.deepcopy(list(self.callbacks or []))
            + ([("codebook_restart", CodebookRestart())] if self.codebook_restart else []),
            device=device,
            bf16=self.mixed_precision,
        )

    def _check_memory(self):
        """``memory`` as a :class:`joblib.Memory`; warns when it cannot be reused."""
        if not isinstance(self.random_state, (Integral, np.random.RandomState)):
            warnings.warn(
                "memory caches trained networks by their seed: with random_state=None "
                "every fit draws a new seed and the cache is never reused. Set an int "
                "random_state.",
                UserWarning,
                stacklevel=5,
            )
        memory = self.memory
        return check_memory(os.fspath(memory) if isinstance(memory, os.PathLike) else memory)

    def _scoring_params(self, overrides: dict | None = None) -> dict:
        """The scoring parameters (and ``batch_size``), with ``overrides``, validated.

        Called by ``fit`` and by every scoring method, since these may be
        changed with ``set_params`` after ``fit``.
        """
        params = {name: getattr(self, name) for name in (*SCORING_PARAMS, "batch_size")}
        return check_scoring_params(params, overrides, caller=type(self).__name__)

    # -------------------------------------------------------------- scoring
    def _validate_for_predict(self, X) -> np.ndarray:
        """Check ``X`` against the fitted shape; return it validated, not yet converted."""
        check_is_fitted(self)
        self._scoring_params()
        # Detectors pickled before integer_bits_ existed read integers by their values.
        return check_fitted_images(X, self, integer_bits=getattr(self, "integer_bits_", None))

    def _iter_batches(self, X: np.ndarray):
        """Yield each batch of validated images ``X`` as float32 on the net's device.

        Each batch of ``batch_size`` images (the current value: it may have
        been set after ``fit``) is converted on its own, so host and device
        memory stay bounded whatever ``len(X)``; values clipped to [0, 1]
        are counted across batches and reported in one warning.
        """
        net, shape = self.net_, self.image_shape_
        outside = 0
        for start in range(0, len(X), self.batch_size):
            batch = X[start : start + self.batch_size]
            outside += count_clipped(batch, self.feature_range_)
            images = to_unit_images(batch, shape, self.feature_range_, warn=False)
            yield torch.from_numpy(images).to(net.device)
        if outside:
            warn_clipped(outside, X.size)

    def _scorer(self) -> Scorer:
        """The fitted state that scoring reads (``skvqad._scoring.Scorer``)."""
        return Scorer(self.net_, 2**self.n_downsampling_, getattr(self, "bank_", None),
                      getattr(self, "code_counts_", None),
                      getattr(self, "score_calibration_", None),
                      getattr(self, "calibration_params_", None))

    def iter_scores(self, X, *, maps: bool = False):
        """Score ``X`` batch by batch: each batch's scores, and maps, from one network pass.

        What :meth:`score_samples` and :meth:`anomaly_map` return, one batch
        of ``batch_size`` images at a time, so that a large data set (a
        memmap, a folder read in chunks) is scored in bounded memory and its
        maps are not computed twice. ``X`` is checked before the first batch.

        Parameters
        ----------
        {X_fitted}
        maps : bool, default=False
            Also yield each batch's anomaly maps.

        Yields
        ------
        scores : ndarray of shape (batch,)
            Higher = more normal, as :meth:`score_samples`.
        maps : ndarray of shape (batch, H, W)
            Only with ``maps=True`` (then each item is ``(scores, maps)``), as
            :meth:`anomaly_map`.

        Examples
        --------
        >>> import numpy as np
        >>> from skvqad import VQVAEAnomalyDetector
        >>> X = np.random.default_rng(0).uniform(0.4, 0.6, size=(10, 8, 8))
        >>> detector = VQVAEAnomalyDetector(
        ...     n_embeddings=8, embedding_dim=4, hidden_channels=8, n_residual_layers=1,
        ...     max_epochs=1, batch_size=4, random_state=0, device="cpu",
        ... ).fit(X)
        >>> [(s.shape, m.shape) for s, m in detector.iter_scores(X, maps=True)]
        [((4,), (4, 8, 8)), ((4,), (4, 8, 8)), ((2,), (2, 8, 8))]
        """
        X = self._validate_for_predict(X)
        setting = self._scoring_params()

        scorer = self._scorer()

        def batches():
            for (scores,), kept in scorer.score_batches(self._iter_batches(X), [setting],
                                                        keep_maps=maps):
                scorer.check_finite(scores, setting, "image scores")  # as score_samples does
                yield (scores, kept) if maps else scores

        return batches()

    def score_samples_multi(self, X, settings):
        """Image scores under several scoring settings, from one pass of the network.

        Each setting is a dict of scoring parameters (``SCORING_PARAMS``) that
        replace the detector's own for that setting alone. The network runs
        once per batch of ``batch_size`` images, whatever the number of
        settings; SSIM and alignment maps that settings share are computed once. Each result
        equals ``score_samples`` after ``set_params(**setting)``; the
        detector itself is not changed.

        Parameters
        ----------
        {X_fitted}
        settings : dict of str to dict, or list of dict
            The settings: a dict from names of your choosing to settings (an
            empty dict is the detector's own), or a list of settings (such as
            a :class:`~sklearn.model_selection.ParameterGrid`).

        Returns
        -------
        scores : dict of str to ndarray of shape (n,), or list of ndarray
            Higher = more normal; a dict with the keys of ``settings`` if it
            is a dict, else a list in its order.

        Raises
        ------
        ValueError
            If a setting names a parameter that is not a scoring parameter,
            or a value that ``fit`` would refuse.

        See Also
        --------
        score_samples : The scores under the detector's own setting.

        Examples
        --------
        >>> import numpy as np
        >>> from skvqad import VQVAEAnomalyDetector
        >>> X = np.random.default_rng(0).uniform(0.4, 0.6, size=(16, 8, 8))
        >>> detector = VQVAEAnomalyDetector(
        ...     n_embeddings=8, embedding_dim=4, hidden_channels=8, n_residual_layers=1,
        ...     max_epochs=1, random_state=0, device="cpu",
        ... ).fit(X)
        >>> scores = detector.score_samples_multi(X, {
        ...     "SSIM+AM": {},
        ...     "SSIM": {"score_map": "ssim"},
        ...     "relative AM, no dilation": {"score_map": "am", "alignment": "relative",
        ...                                  "dilation_radius": 0},
        ... })
        >>> sorted(scores), scores["SSIM"].shape
        (['SSIM', 'SSIM+AM', 'relative AM, no dilation'], (16,))
        >>> bool(np.allclose(scores["SSIM+AM"], detector.score_samples(X)))
        True
        """
        if isinstance(settings, dict):
            names, settings = list(settings), list(settings.values())
        else:
            names, settings = None, list(settings)
        for setting in settings:
            if not isinstance(setting, dict):
                raise TypeError(
                    f"Each setting must be a dict of scoring parameters, got {setting!r}."
                )
        X = self._validate_for_predict(X)
        settings = [self._scoring_params(s) for s in settings]
        scores = self._scorer().scores(self._iter_batches(X), settings)
        return scores if names is None else dict(zip(names, scores, strict=True))

    def anomaly_map(self, X) -> np.ndarray:
        """Pixel anomaly map of each image (higher = more anomalous).

        Parameters
        ----------
        {X_fitted}

        Returns
        -------
        maps : ndarray of shape (n, H, W), float32
            The map selected by ``score_map``, at the input resolution.
        """
        X = self._validate_for_predict(X)
        height, width, _ = self.image_shape_
        maps = np.empty((len(X), height, width), dtype=np.float32)
        setting = self._scoring_params()
        start = 0
        scorer = self._scorer()
        for _, batch in scorer.score_batches(self._iter_batches(X), [setting], keep_maps=True):
            maps[start : start + len(batch)] = batch
            start += len(batch)
        # As scoring does: NaN maps would threshold as normal pixels.
        scorer.check_finite(maps, setting, "map values")
        return maps

    def reconstruct(self, X) -> np.ndarray:
        """The network's reconstruction of each image (the continuous-Bernoulli mean).

        Parameters
        ----------
        {X_fitted}

        Returns
        -------
        images : ndarray of shape (n, H, W) or (n, H, W, C), float32 in [0, 1]
            ``(n, H, W)`` for one-channel images, whatever the input layout.
        """
        X = self._validate_for_predict(X)
        outputs = self._scorer().outputs(self._iter_batches(X))
        recon = np.concatenate(
            [reconstruction(out.logits).cpu().numpy() for _, out in outputs]
        ).transpose(0, 2, 3, 1)
        return recon[..., 0] if recon.shape[-1] == 1 else recon

    def score_samples(self, X) -> np.ndarray:
        """Minus each image's anomaly map pooled by ``score_pooling`` (higher = more normal).

        With the default ``score_pooling="mean"``, minus the mean of the map,
        as in the paper.

        Parameters
        ----------
        {X_fitted}

        Returns
        -------
        scores : ndarray of shape (n,)
        """
        X = self._validate_for_predict(X)
        return self._scorer().scores(self._iter_batches(X), [self._scoring_params()])[0]

    def decision_function(self, X) -> np.ndarray:
        """``score_samples(X) - offset_``: negative for outliers.

        Parameters
        ----------
        {X_fitted}

        Returns
        -------
        scores : ndarray of shape (n,)
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X) -> np.ndarray:
        """+1 for inliers, -1 for outliers (``decision_function < 0``).

        The threshold ``offset_`` was set by ``fit`` for the scoring
        parameters of that moment; after changing one with ``set_params``,
        call :meth:`refit_threshold` before relying on the labels.

        Parameters
        ----------
        {X_fitted}

        Returns
        -------
        labels : ndarray of shape (n,), int
        """
        decision = self.decision_function(X)
        labels = np.ones(decision.shape[0], dtype=int)
        labels[decision < 0] = -1
        return labels

    def fit_predict(self, X, y=None) -> np.ndarray:
        """``fit(X, y).predict(X)``: train (on the ``y == 1`` images if ``y`` is given) and label X.

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, H, W, C) or (n, d)
            Images.
        y : array-like of shape (n,) or None, default=None
            As in :meth:`fit` (scikit-learn's ``OutlierMixin.fit_predict``
            would drop it and train on the anomalies too).

        Returns
        -------
        labels : ndarray of shape (n,), int
            +1 for inliers, -1 for outliers.
        """
        return self.fit(X, y).predict(X)

    def save(self, path) -> None:
        """Write the fitted detector to ``path`` in a format that runs no code on load.

        See :mod:`skvqad.persistence` for what is stored. ``joblib.dump``
        works too, but loading a pickle can run arbitrary code.

        Parameters
        ----------
        path : str or path-like
            Destination file; written to a temporary file, then renamed.
        """
        write_detector(self, path)

    @classmethod
    def load(cls, path, device=None) -> "VQVAEAnomalyDetector":
        """Read a detector written by :meth:`save` (``torch.load(weights_only=True)``).

        Parameters
        ----------
        path : str or path-like
            The file.
        device : str or None, default=None
            Where to put the network; None keeps the saved ``device``, or the
            CPU when that was CUDA and CUDA is not available.

        Returns
        -------
        VQVAEAnomalyDetector
            The fitted detector.

        Examples
        --------
        >>> import tempfile
        >>> from pathlib import Path
        >>> import numpy as np
        >>> from skvqad import VQVAEAnomalyDetector
        >>> X = np.random.default_rng(0).uniform(0.4, 0.6, size=(16, 8, 8))
        >>> detector = VQVAEAnomalyDetector(
        ...     n_embeddings=8, embedding_dim=4, hidden_channels=8, n_residual_layers=1,
        ...     max_epochs=1, random_state=0, device="cpu",
        ... ).fit(X)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     detector.save(Path(tmp) / "detector.skvqad")
        ...     loaded = VQVAEAnomalyDetector.load(Path(tmp) / "detector.skvqad")
        >>> bool(np.allclose(loaded.score_samples(X), detector.score_samples(X)))
        True
        >>> loaded.offset_ == detector.offset_
        True
        """
        return read_detector(cls, path, device)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags

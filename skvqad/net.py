"""Training of the VQ-VAE with skorch.

:class:`VQVAENet` is a :class:`skorch.NeuralNet` whose target is its input:
``get_loss`` evaluates :class:`skvqad.model.VQVAELoss` against the batch of
images, records each term of eq. 4 in the history and stops training on a
non-finite loss. :class:`CodebookUsage` records how many codes the epoch used
and their perplexity; :class:`CodebookRestart` (optional) draws the codebook
from encoder outputs and re-draws the codes left unused. Everything else (the loop, optimiser, callbacks,
device handling, pickling) is skorch's.

The detector trains through three functions of this module:
:func:`resolve_device` (``"auto"`` to a torch device), :func:`build_net` (the
:class:`VQVAENet` for the detector's parameters) and :func:`train_net`
(seeded training with skorch's ``fit``, the function the detector's
``memory`` caches).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, PassthroughScoring, ProgressBar
from skorch.history import History
from skorch.utils import to_tensor

from ._images import UnitImages
from .model import VQVAE, VQVAELoss

__all__ = [
    "VQVAENet",
    "CodebookUsage",
    "CodebookRestart",
    "EpochCheckpoint",
    "ImageBatches",
    "LOSS_TERMS",
    "cpu_has_native_bf16",
    "resolve_device",
    "build_net",
    "train_net",
    "training_code_digest",
]

#: Names of the loss terms recorded per batch and per epoch (``train_`` prefix).
LOSS_TERMS = ("nll", "alignment", "commitment")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices natively (AVX512-BF16 or AMX).

    On such CPUs bfloat16 autocast trains the VQ-VAE about 1.4 times as fast
    as float32 (an Intel Xeon with AMX, 2 or 16 threads); on CPUs without
    these instructions torch emulates bfloat16 and autocast is many times
    *slower* (12 times on an AVX2-only AMD EPYC), so ``bf16="auto"`` uses it
    only where this returns True. Asks torch's own CPU capability checks,
    which read the CPUID flags.

    Returns
    -------
    bool

    Examples
    --------
    >>> from skvqad.net import cpu_has_native_bf16
    >>> isinstance(cpu_has_native_bf16(), bool)
    True
    """
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    # Private torch functions (torch >= 2.1 has both): absent ones count as "no".
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


class CodebookUsage(Callback):
    """Record the codebook usage of each training epoch.

    Adds two epoch-level entries to the history: ``codes_used`` (codes
    selected at least once) and ``codebook_perplexity`` (``exp`` of the
    entropy of the code frequencies; equals ``codes_used`` when all used
    codes are equally frequent). Few codes in use is a sign of codebook
    collapse.

    Examples
    --------
    :class:`VQVAENet` adds this callback; the detector's ``history_`` holds
    its entries:

    >>> import numpy as np
    >>> from skvqad import VQVAEAnomalyDetector
    >>> X = np.random.default_rng(0).uniform(0.4, 0.6, size=(16, 8, 8))
    >>> detector = VQVAEAnomalyDetector(
    ...     n_embeddings=8, embedding_dim=4, hidden_channels=8, n_residual_layers=1,
    ...     max_epochs=1, random_state=0, device="cpu",
    ... ).fit(X)
    >>> 1 <= detector.history_[-1, "codes_used"] <= 8
    True
    """

    def on_epoch_begin(self, net, **kwargs):
        """Reset the code counts.

        Parameters
        ----------
        net : VQVAENet
            The net being trained (unused).
        **kwargs
            Ignored.
        """
        self.counts_ = None

    def on_batch_end(self, net, batch=None, training=False, y_pred=None, **kwargs):
        """Add the codes of a training batch to the counts.

        Parameters
        ----------
        net : VQVAENet
            The net being trained.
        batch : tuple, default=None
            The batch (unused).
        training : bool, default=False
            Validation batches (False) are not counted.
        y_pred : VQVAEOutput, default=None
            The net's output for the batch.
        **kwargs
            Ignored.
        """
        if not training or y_pred is None:
            return
        counts = torch.bincount(
            y_pred.indices.flatten(), minlength=net.module_.codebook.num_embeddings
        )
        self.counts_ = counts if self.counts_ is None else self.counts_ + counts

    def on_epoch_end(self, net, **kwargs):
        """Record ``codes_used`` and ``codebook_perplexity`` of the epoch.

        Parameters
        ----------
        net : VQVAENet
            The net being trained; the entries go to its ``history``.
        **kwargs
            Ignored.
        """
        if self.counts_ is None:
            return
        counts = self.counts_.double().cpu().numpy()
        # Kept as NumPy: the callback is pickled with the net, and a device tensor there
        # would not load on a machine without that device.
        self.counts_ = counts
        p = counts[counts > 0] / counts.sum()
        net.history.record("codes_used", int((counts > 0).sum()))
        net.history.record("codebook_perplexity", float(np.exp(-(p * np.log(p)).sum())))


class CodebookRestart(Callback):
    """Draw the codebook from encoder outputs and re-draw unused codes.

    A remedy for codebook collapse, where training ends with a few of the M
    codes in use: after the first training batch, every code is replaced by
    an encoder output of that batch, drawn at random without replacement (a
    data-dependent initialisation); at the start of each later epoch, the
    codes that no training batch of the previous epoch selected are replaced
    the same way by encoder outputs of that epoch (the "random restarts" of
    Dhariwal et al., Jukebox, 2020), drawn from a reservoir: a uniform sample
    of M of all the epoch's encoder outputs, kept as the batches pass (each
    output gets a random key; the M smallest keys stay). Re-drawn codes are
    then distinct outputs of the whole epoch, however small its last batch.
    Codes are never replaced after the last epoch, so the decoder has seen
    every code it may meet.

    Each epoch's history gets ``codes_restarted``: how many codes were
    re-drawn at its start (all of them in the first epoch).

    The detector adds this callback when ``codebook_restart=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from skvqad import VQVAEAnomalyDetector
    >>> X = np.random.default_rng(0).uniform(0.2, 0.8, size=(32, 8, 8))
    >>> detector = VQVAEAnomalyDetector(
    ...     n_embeddings=8, embedding_dim=4, hidden_channels=8, n_residual_layers=1,
    ...     max_epochs=2, batch_size=16, codebook_restart=True, random_state=0, device="cpu",
    ... ).fit(X)
    >>> detector.history_[0, "codes_restarted"]
    8
    """

    def on_train_begin(self, net, **kwargs):
        """Forget the state of an earlier fit.

        Parameters
        ----------
        net : VQVAENet
            The net about to be trained (unused).
        **kwargs
            Ignored.
        """
        self.initialized_ = False
        self.counts_ = None
        self.pool_ = None
        self.keys_ = None

    def on_train_end(self, net, **kwargs):
        """Drop the encoder outputs and counts kept for the restarts.

        They are of no use after training, and the callback is pickled with
        the net (``joblib.dump`` of a fitted detector).

        Parameters
        ----------
        net : VQVAENet
            The trained net (unused).
        **kwargs
            Ignored.
        """
        self.counts_ = None
        self.pool_ = None
        self.keys_ = None

    @staticmethod
    def _generator(net, device):
        return net.generator(device) if isinstance(net, VQVAENet) else None

    def _redraw(self, net, codes: torch.Tensor, pool: torch.Tensor) -> int:
        """Replace the codebook rows ``codes`` by random rows of ``pool`` (N, D), distinct if N allows."""
        n = len(codes)
        if n == 0:
            return 0
        generator = self._generator(net, pool.device)
        rows = torch.randperm(len(pool), device=pool.device, generator=generator)[:n]
        if len(rows) < n:  # fewer vectors than codes: draw with replacement
            rows = torch.randint(len(pool), (n,), device=pool.device, generator=generator)
        weight = net.module_.codebook.weight
        with torch.no_grad():
            weight[codes.to(weight.device)] = pool[rows].to(weight.device, weight.dtype)
        return n

    def on_epoch_begin(self, net, **kwargs):
        """Re-draw the codes that the previous epoch left unused.

        Parameters
        ----------
        net : VQVAENet
            The net being trained; ``codes_restarted`` goes to its history.
        **kwargs
            Ignored.
        """
        if not self.initialized_:
            return
        restarted = 0
        if self.counts_ is not None and self.pool_ is not None:
            dead = torch.nonzero(self.counts_ == 0).flatten()
            restarted = self._redraw(net, dead, self.pool_)
        net.history.record("codes_restarted", restarted)
        self.counts_ = self.pool_ = self.keys_ = None  # a new epoch, a new reservoir

    def _keep(self, net, flat: torch.Tensor) -> None:
        """Add a batch's encoder outputs (N, D) to the reservoir: M uniform among all so far."""
        keys = torch.rand(len(flat), device=flat.device, generator=self._generator(net, flat.device))
        if self.pool_ is not None:
            flat, keys = torch.cat([self.pool_, flat]), torch.cat([self.keys_, keys])
        size = net.module_.codebook.num_embeddings
        if len(keys) > size:
            kept = torch.topk(keys, size, largest=False).indices
            flat, keys = flat[kept], keys[kept]
        self.pool_, self.keys_ = flat, keys

    def on_batch_end(self, net, batch=None, training=False, y_pred=None, **kwargs):
        """Initialise the codebook after the first batch; count the codes used.

        Parameters
        ----------
        net : VQVAENet
            The net being trained.
        batch : tuple, default=None
            The batch (unused).
        training : bool, default=False
            Only training batches count.
        y_pred : VQVAEOutput, default=None
            The net's output for the batch.
        **kwargs
            Ignored.
        """
        if not training or y_pred is None:
            return
        z_e = y_pred.z_e.detach()
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])
        if not self.initialized_:
            codebook = net.module_.codebook
            n = self._redraw(net, torch.arange(codebook.num_embeddings, device=z_e.device), flat)
            net.history.record("codes_restarted", n)
            self.initialized_ = True
            return
        counts = torch.bincount(
            y_pred.indices.flatten(), minlength=net.module_.codebook.num_embeddings
        )
        self.counts_ = counts if self.counts_ is None else self.counts_ + counts
        self._keep(net, flat)


class EpochCheckpoint(Callback):
    """Write the whole training state at the end of each epoch; restore it to resume.

    What exact resumption needs, written atomically (a temporary file renamed
    into place) to ``path`` with :func:`torch.save` and read back with
    ``weights_only=True`` (no code runs on load): the module's weights and
    buffers, the optimiser's state, the history, the net's random generators
    (:meth:`VQVAENet.generator`) and :class:`CodebookRestart`'s reservoir and
    counts. A fit resumed from it continues after the last completed epoch
    and ends with the weights, history and scores of a fit that was never
    stopped (other callbacks of yours start their state afresh).

    skorch's own :class:`~skorch.callbacks.Checkpoint` and
    :class:`~skorch.callbacks.LoadInitState` save and load the weights, the
    optimiser and the history, but not the callbacks' state nor the random
    generators, without which the resumed fit would shuffle and restart codes
    differently; their whole-net pickle (``f_pickle``) would run code on load.

    Parameters
    ----------
    path : str or path-like
        The checkpoint file.
    key : str
        What the checkpoint belongs to (a digest of the images, parameters,
        seed and code of the fit); a checkpoint with another key is refused.
    state : dict or None, default=None
        A state read by :meth:`read`, restored at the start of training.

    Examples
    --------
    The detector uses it through ``checkpoint_dir``:

    >>> import tempfile
    >>> import numpy as np
    >>> from skvqad import VQVAEAnomalyDetector
    >>> X = np.random.default_rng(0).uniform(0.4, 0.6, size=(16, 8, 8))
    >>> params = dict(n_embeddings=8, embedding_dim=4, hidden_channels=8, n_residual_layers=1,
    ...               random_state=0, device="cpu")
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     first = VQVAEAnomalyDetector(**params, max_epochs=2, checkpoint_dir=folder).fit(X)
    ...     # The same fit again: restored from the last epoch's state, not trained.
    ...     again = VQVAEAnomalyDetector(**params, max_epochs=2, checkpoint_dir=folder).fit(X)
    >>> len(again.history_), bool(np.array_equal(again.score_samples(X), first.score_samples(X)))
    (2, True)
    """

    FORMAT = "skvqad.checkpoint"

    def __init__(self, path, key, state=None):
        self.path = path
        self.key = key
        self.state = state

    @classmethod
    def read(cls, path, key) -> dict | None:
        """The state in ``path`` (None if there is none), refused unless it belongs to ``key``.

        Parameters
        ----------
        path : str or path-like
        key : str

        Returns
        -------
        dict or None

        Raises
        ------
        ValueError
            If the file holds the state of another fit, or is not a checkpoint.
        """
        if not Path(path).exists():
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # damaged or another format
            raise ValueError(f"{path} is not a readable skvqad checkpoint: {exc}") from exc
        if not isinstance(state, dict) or state.get("format") != cls.FORMAT:
            raise ValueError(f"{path} is not a skvqad checkpoint.")
        if state.get("key") != key:
            raise ValueError(
                f"{path} holds the training state of another fit (other parameters, other "
                "images or other code): remove it, or give this fit another checkpoint_dir."
            )
        return state

    def on_train_begin(self, net, **kwargs):
        """Restore ``state`` (after :class:`CodebookRestart` has reset its own).

        Parameters
        ----------
        net : VQVAENet
        **kwargs
            Ignored.
        """
        state, self.state = self.state, None
        if state is None:
            return
        net.module_.load_state_dict(state["module"])
        net.optimizer_.load_state_dict(state["optimizer"])
        net.history = History(json.loads(state["history"]))
        net.generators_ = {}
        for device, generator_state in state["generators"].items():
            net.generator(device).set_state(generator_state)
        restart = dict(net.callbacks_).get("codebook_restart")
        if restart is not None and state["restart"] is not None:
            device = next(net.module_.parameters()).device
            restart.initialized_ = state["restart"]["initialized"]
            for name in ("counts", "pool", "keys"):
                value = state["restart"][name]
                setattr(restart, f"{name}_", None if value is None else value.to(device))

    def on_epoch_end(self, net, **kwargs):
        """Write the training state of the epoch just completed.

        Parameters
        ----------
        net : VQVAENet
        **kwargs
            Ignored.
        """
        restart = dict(net.callbacks_).get("codebook_restart")

        def cpu(value):
            return None if value is None else value.detach().cpu()

        state = {
            "format": self.FORMAT,
            "key": self.key,
            "epochs": len(net.history),
            "module": {k: v.detach().cpu() for k, v in net.module_.state_dict().items()},
            "optimizer": net.optimizer_.state_dict(),
            "history": json.dumps(net.history.to_list(), default=float),
            "generators": {d: g.get_state() for d, g in getattr(net, "generators_", {}).items()},
            "restart": None if restart is None else {
                "initialized": bool(restart.initialized_), "counts": cpu(restart.counts_),
                "pool": cpu(restart.pool_), "keys": cpu(restart.keys_)},
        }
        path = Path(self.path)
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)


class ImageBatches:
    """Batches of a skorch dataset of images, sliced whole from its array.

    skorch's default :class:`torch.utils.data.DataLoader` indexes and
    collates one image at a time; this iterator slices each batch at once
    from ``dataset.X`` (an ``(n, C, H, W)`` NumPy array or tensor, or the
    detector's ``UnitImages``, which converts each batch from the user's
    images when it is sliced) and moves it to ``device``, so a tensor that
    already lives on the net's device is never copied back and forth. Used as
    ``iterator_train`` and ``iterator_valid`` of :class:`VQVAENet`.

    Parameters
    ----------
    dataset : skorch.dataset.Dataset
        Holds the images in ``dataset.X``.
    batch_size : int
        Images per batch (the last one may be smaller).
    shuffle : bool, default=False
        Draw a new permutation each epoch, on the data's device.
    device : str or torch.device, default="cpu"
        Where the batches go; :class:`VQVAENet` passes its own ``device``.
    generator : callable or None, default=None
        A function from a device to the :class:`torch.Generator` to draw
        the permutations from (:meth:`VQVAENet.generator`, which
        :class:`VQVAENet` passes); None draws from torch's global one.

    Examples
    --------
    >>> import numpy as np
    >>> from skorch.dataset import Dataset
    >>> from skvqad.net import ImageBatches
    >>> batches = ImageBatches(Dataset(np.zeros((5, 1, 8, 8), np.float32)), batch_size=2)
    >>> len(batches)
    3
    >>> [tuple(x.shape) for x, _ in batches]
    [(2, 1, 8, 8), (2, 1, 8, 8), (1, 1, 8, 8)]
    """

    def __init__(self, dataset, batch_size, shuffle=False, device="cpu", generator=None):
        self.X = dataset.X
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.device = device
        self.generator = generator

    def __len__(self):
        return -(-len(self.X) // self.batch_size)

    def __iter__(self):
        X = self.X
        if not torch.is_tensor(X) and not isinstance(X, UnitImages):
            X = torch.from_numpy(np.asarray(X))
        on = X.device if torch.is_tensor(X) else "cpu"
        generator = self.generator(on) if self.generator is not None else None
        order = torch.randperm(len(X), device=on, generator=generator) if self.shuffle else None
        for start in range(0, len(X), self.batch_size):
            stop = start + self.batch_size
            if order is None:
                batch = X[start:stop]
            else:  # a tensor takes the index as is; UnitImages, a NumPy one
                batch = X[order[start:stop] if torch.is_tensor(X) else order[start:stop].numpy()]
            if not torch.is_tensor(batch):
                batch = torch.from_numpy(batch)
            yield batch.to(self.device, non_blocking=True), None


class _Interrupted(BaseException):
    """Carries a KeyboardInterrupt past skorch's ``partial_fit``, which swallows it."""


class VQVAENet(NeuralNet):
    """skorch net that trains a :class:`~skvqad.model.VQVAE` to reconstruct X.

    Takes every argument of :class:`skorch.NeuralNet`; ``criterion`` defaults
    to :class:`~skvqad.model.VQVAELoss`. ``fit(X)`` needs no ``y``: the target
    of each batch is the batch itself.

    Each term of the loss is recorded per batch (``train_nll``,
    ``train_alignment``, ``train_commitment``) and averaged per epoch,
    like ``train_loss``; :class:`CodebookUsage` adds ``codes_used`` and
    ``codebook_perplexity``.

    Parameters
    ----------
    module, criterion, **kwargs
        As for :class:`skorch.NeuralNet`; ``criterion`` defaults to
        :class:`~skvqad.model.VQVAELoss` and the iterators to
        :class:`ImageBatches`.
    bf16 : bool or "auto", default="auto"
        Run the module under bfloat16 autocast: ``"auto"`` on CUDA and on
        CPUs with native bfloat16 (:func:`cpu_has_native_bf16`), ``True`` on
        any device, ``False`` never. The codebook search and the loss stay in
        float32. Like the iterators' device, ``"auto"`` follows ``device`` and
        the machine, so a net trained on CUDA and unpickled on a CPU-only
        machine (skorch moves it to the CPU) runs in float32 there unless
        that CPU has native bfloat16; the detector passes the choice it
        resolved at ``fit``, a bool.
    seed : int or None, default=None
        Seeds this net's own random generators (:meth:`generator`), from which
        the weights' initialisation, the shuffling and the codebook restarts
        draw: training is then reproducible and leaves torch's global random
        state alone, so that nets can train in several threads at once.
        None draws from torch's global generator, as skorch does.

    Raises
    ------
    FloatingPointError
        During ``fit``, as soon as a training loss is NaN or infinite.
    KeyboardInterrupt
        Out of ``fit`` and ``partial_fit`` when training is interrupted
        (Ctrl-C). skorch itself ends training quietly then and returns the
        half-trained net, which a caller (or a ``memory`` cache) would take
        for a trained one.

    Examples
    --------
    >>> import numpy as np
    >>> from skvqad.model import VQVAE
    >>> from skvqad.net import VQVAENet
    >>> net = VQVAENet(
    ...     VQVAE, module__hidden_channels=8, module__embedding_dim=4,
    ...     module__n_embeddings=8, module__n_residual_layers=1,
    ...     max_epochs=1, batch_size=8, train_split=None, verbose=0,
    ... )
    >>> X = np.random.default_rng(0).uniform(size=(16, 1, 8, 8)).astype(np.float32)
    >>> net = net.fit(X)
    >>> keys = ("train_nll", "train_alignment", "train_commitment", "codes_used")
    >>> [key in net.history[-1] for key in keys]
    [True, True, True, True]
    """

    def __init__(
        self,
        module,
        *args,
        criterion=VQVAELoss,
        iterator_train=ImageBatches,
        iterator_valid=ImageBatches,
        bf16="auto",
        seed=None,
        **kwargs,
    ):
        self.bf16 = bf16
        self.seed = seed
        super().__init__(
            module,
            criterion,
            *args,
            iterator_train=iterator_train,
            iterator_valid=iterator_valid,
            **kwargs,
        )

    def generator(self, device) -> torch.Generator | None:
        """This net's random generator on ``device``, seeded by ``seed`` at ``initialize``.

        One per device type and index (a CUDA permutation needs a CUDA
        generator); None when ``seed`` is None (torch's global generator).

        Parameters
        ----------
        device : str or torch.device

        Returns
        -------
        torch.Generator or None

        Examples
        --------
        >>> import torch
        >>> from skvqad.model import VQVAE
        >>> from skvqad.net import VQVAENet
        >>> net = VQVAENet(VQVAE, seed=3)
        >>> torch.equal(torch.rand(2, generator=net.generator("cpu")),
        ...             torch.rand(2, generator=torch.Generator().manual_seed(3)))
        True
        >>> VQVAENet(VQVAE).generator("cpu") is None  # no seed: torch's global generator
        True
        """
        if self.seed is None:
            return None
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        generators = self.__dict__.setdefault("generators_", {})
        if str(device) not in generators:
            generators[str(device)] = torch.Generator(device=device).manual_seed(int(self.seed))
        return generators[str(device)]

    def initialize(self):
        """skorch's ``initialize``, with fresh generators seeded by ``seed``.

        Returns
        -------
        self : VQVAENet
        """
        self.generators_ = {}
        return super().initialize()

    def initialize_module(self):
        """The module, its weights drawn from :meth:`generator` when ``seed`` is set.

        It is built on the ``"meta"`` device (no random draws) and its
        parameters drawn by :meth:`VQVAE.reset_parameters`, in the order
        and with the values that building it after ``torch.manual_seed(seed)``
        gives, without touching torch's global random state.

        Returns
        -------
        self : VQVAENet
        """
        if self.seed is None or not isinstance(self.module, type):
            return super().initialize_module()
        with torch.device("meta"):
            module = self.module(**self.get_params_for("module"))
        module = module.to_empty(device="cpu")
        module.reset_parameters(self.generator("cpu"))
        self.module_ = module
        return self

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("generators_", None)  # training state only; not every torch pickles them
        return state

    def get_iterator(self, dataset, training=False):
        """skorch's iterator; :class:`ImageBatches` sends batches to ``self.device``.

        Parameters
        ----------
        dataset : skorch.dataset.Dataset
            The data.
        training : bool, default=False
            Use ``iterator_train`` rather than ``iterator_valid``.

        Returns
        -------
        iterable of batches
            An :class:`ImageBatches` by default.

        Examples
        --------
        >>> import numpy as np
        >>> from skvqad.model import VQVAE
        >>> from skvqad.net import VQVAENet
        >>> net = VQVAENet(VQVAE, batch_size=2, device="cpu")
        >>> iterator = net.get_iterator(net.get_dataset(np.zeros((3, 1, 8, 8), np.float32)))
        >>> type(iterator).__name__, len(iterator), iterator.device
        ('ImageBatches', 2, 'cpu')
        """
        iterator = super().get_iterator(dataset, training=training)
        if isinstance(iterator, ImageBatches):
            iterator.device = self.device
            iterator.generator = self.generator
        return iterator

    @property
    def bf16_enabled(self) -> bool:
        """Whether the forward pass runs under bfloat16 autocast.

        Examples
        --------
        >>> from skvqad.model import VQVAE
        >>> from skvqad.net import VQVAENet
        >>> from skvqad.net import cpu_has_native_bf16
        >>> VQVAENet(VQVAE, device="cpu").bf16_enabled == cpu_has_native_bf16()  # "auto"
        True
        >>> VQVAENet(VQVAE, device="cpu", bf16=True).bf16_enabled
        True
        """
        if self.bf16 == "auto":
            device = str(self.device)
            return device.startswith("cuda") or (device.startswith("cpu") and cpu_has_native_bf16())
        return bool(self.bf16)

    def infer(self, x, **fit_params):
        """Forward pass of a batch, under bfloat16 autocast if enabled.

        Parameters
        ----------
        x : array-like or torch.Tensor of shape (n, C, H, W)
            Images in [0, 1]; moved to ``self.device``.
        **fit_params
            Passed to the module.

        Returns
        -------
        skvqad.model.VQVAEOutput

        Examples
        --------
        >>> import torch
        >>> from skvqad.model import VQVAE
        >>> from skvqad.net import VQVAENet
        >>> net = VQVAENet(
        ...     VQVAE, module__hidden_channels=8, module__embedding_dim=4,
        ...     module__n_embeddings=8, module__n_residual_layers=1,
        ... ).initialize()
        >>> out = net.infer(torch.rand(2, 1, 8, 8))
        >>> type(out).__name__, out.logits.shape
        ('VQVAEOutput', torch.Size([2, 1, 8, 8]))
        """
        x = to_tensor(x, device=self.device)
        with self._autocast(x):
            return self.module_(x, **fit_params)

    def _autocast(self, x: torch.Tensor):
        """bfloat16 autocast on ``x``'s device when :attr:`bf16_enabled`, else a no-op context."""
        return torch.autocast(device_type=x.device.type, dtype=torch.bfloat16,
                              enabled=self.bf16_enabled)

    def encode(self, x):
        """The latent grid of a batch: :meth:`VQVAE.encode` under the autocast of :meth:`infer`.

        No gradients are recorded and the module is put in evaluation mode,
        as for :meth:`skorch.NeuralNet.evaluation_step`.

        Parameters
        ----------
        x : array-like or torch.Tensor of shape (n, C, H, W)
            Images in [0, 1]; moved to ``self.device``.

        Returns
        -------
        z_e, e : torch.Tensor of shape (n, D, h, w)
        indices : torch.Tensor of shape (n, h, w)

        Examples
        --------
        >>> import torch
        >>> from skvqad.model import VQVAE
        >>> from skvqad.net import VQVAENet
        >>> net = VQVAENet(
        ...     VQVAE, module__hidden_channels=8, module__embedding_dim=4,
        ...     module__n_embeddings=8, module__n_residual_layers=1,
        ... ).initialize()
        >>> x = torch.rand(2, 1, 8, 8)
        >>> torch.equal(net.encode(x)[2], net.evaluation_step((x, None)).indices)
        True
        """
        self.check_is_fitted()
        x = to_tensor(x, device=self.device)
        self._set_training(False)
        with torch.inference_mode(), self._autocast(x):
            return self.module_.encode(x)

    def fit_loop(self, X, y=None, **fit_params):
        """skorch's training loop; an interrupt leaves it as :class:`_Interrupted`.

        Parameters
        ----------
        X, y, **fit_params
            As for :meth:`skorch.NeuralNet.fit_loop`.

        Returns
        -------
        self : VQVAENet
        """
        try:
            return super().fit_loop(X, y, **fit_params)
        except KeyboardInterrupt as exc:
            raise _Interrupted() from exc

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """skorch's ``partial_fit``, except that an interrupt propagates.

        Parameters
        ----------
        X, y, classes, **fit_params
            As for :meth:`skorch.NeuralNet.partial_fit`.

        Returns
        -------
        self : VQVAENet

        Raises
        ------
        KeyboardInterrupt
            If training was interrupted.

        Examples
        --------
        >>> import numpy as np
        >>> from skorch.callbacks import Callback
        >>> from skvqad.model import VQVAE
        >>> from skvqad.net import VQVAENet
        >>> class CtrlC(Callback):
        ...     def on_epoch_end(self, net, **kwargs):
        ...         raise KeyboardInterrupt
        >>> net = VQVAENet(VQVAE, module__hidden_channels=8, module__embedding_dim=4,
        ...                module__n_embeddings=8, module__n_residual_layers=1,
        ...                max_epochs=5, train_split=None, callbacks=[CtrlC()], verbose=0)
        >>> try:
        ...     net.fit(np.zeros((4, 1, 8, 8), np.float32))
        ... except KeyboardInterrupt:
        ...     print(f"interrupted in epoch {len(net.history)} of 5")
        interrupted in epoch 1 of 5
        """
        try:
            return super().partial_fit(X, y, classes, **fit_params)
        except _Interrupted as exc:
            raise exc.__cause__.with_traceback(exc.__cause__.__traceback__) from None

    @property
    def _default_callbacks(self):
        ours = [
            (f"train_{term}", PassthroughScoring(name=f"train_{term}", on_train=True))
            for term in LOSS_TERMS
        ] + [("codebook_usage", CodebookUsage())]
        # PrintLog must stay last to print what the others recorded.
        callbacks = super()._default_callbacks
        return callbacks[:-1] + ours + callbacks[-1:]

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Loss of eq. 4 of the batch ``X`` (``y_true`` is ignored).

        Parameters
        ----------
        y_pred : skvqad.model.VQVAEOutput
            The net's output for ``X``.
        y_true : None
            Ignored: the target is ``X``.
        X : array-like or torch.Tensor of shape (n, C, H, W)
            The batch of images.
        training : bool, default=False
            Record each term in the batch history when True.

        Returns
        -------
        torch.Tensor of shape ()
            The loss.

        Raises
        ------
        FloatingPointError
            If the loss is NaN or infinite.

        Examples
        --------
        >>> import torch
        >>> from skvqad.model import VQVAE
        >>> from skvqad.net import VQVAENet
        >>> net = VQVAENet(
        ...     VQVAE, module__hidden_channels=8, module__embedding_dim=4,
        ...     module__n_embeddings=8, module__n_residual_layers=1,
        ... ).initialize()
        >>> x = torch.rand(2, 1, 8, 8)
        >>> loss = net.get_loss(net.infer(x), None, X=x)
        >>> loss.shape, bool(torch.isfinite(loss))
        (torch.Size([]), True)
        """
        terms = self.criterion_(y_pred, to_tensor(X, device=self.device))
        values = torch.stack([t.detach() for t in terms]).tolist()
        if training:
            for name, value in zip(LOSS_TERMS, values[1:], strict=True):
                self.history.record_batch(f"train_{name}", value)
        if not math.isfinite(values[0]):
            epoch = len(self.history)
            detail = ", ".join(f"{k}={v:.4g}" for k, v in zip(terms._fields, values, strict=True))
            raise FloatingPointError(
                f"The VQ-VAE loss is not finite ({detail}) in epoch {epoch}. "
                "Training was stopped; try a lower learning rate."
            )
        return terms.loss


# --------------------------------------------------------------------- training
def resolve_device(device) -> str:
    """The torch device a ``device`` parameter names, checked.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"`` (CUDA when available, else the CPU), ``"cpu"``,
        ``"cuda"``, ``"cuda:1"``...

    Returns
    -------
    str
        The device, e.g. ``"cpu"`` or ``"cuda"``.

    Raises
    ------
    ValueError
        If ``device`` is not a torch device, or names CUDA on a machine
        without it.

    Examples
    --------
    >>> from skvqad.net import resolve_device
    >>> resolve_device("cpu")
    'cpu'
    """
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a valid torch device.") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available on this machine "
            "(torch.cuda.is_available() is False). Use device='auto' or 'cpu'."
        )
    return str(resolved)


def build_net(net_params: dict, verbose: int = 0) -> VQVAENet:
    """An uninitialised :class:`VQVAENet` with ``net_params``.

    The image is its own target (``y=None``), there is no validation split,
    and the training batches are shuffled.

    Parameters
    ----------
    net_params : dict
        Keyword arguments of :class:`VQVAENet` (``module__*``,
        ``criterion__beta``, ``optimizer``, ``lr``, ``max_epochs``,
        ``batch_size``, ``device``, ``bf16``) and ``callbacks``, a list;
        the detector builds them from its parameters.
    verbose : int, default=0
        Non-zero prints skorch's epoch table and adds its progress bar.

    Returns
    -------
    VQVAENet
    """
    net_params = dict(net_params)
    callbacks = list(net_params.pop("callbacks"))
    if verbose:
        callbacks.append(("progress_bar", ProgressBar()))
    return VQVAENet(
        VQVAE,
        criterion=VQVAELoss,
        iterator_train__shuffle=True,
        train_split=None,
        callbacks=callbacks,
        verbose=verbose,
        **net_params,
    )


def train_net(
    images: UnitImages, net_params: dict, seed: int, versions: tuple, verbose: int = 0,
    checkpoint_dir=None,
) -> VQVAENet:
    """Build a :class:`VQVAENet` and train it on ``images`` with skorch's ``fit``.

    ``net.fit`` runs skorch's loop, which calls :meth:`VQVAENet.get_loss`
    (the loss of :class:`~skvqad.model.VQVAELoss`) on each batch. A pure
    function of its arguments, so that the detector's ``memory`` can cache
    its result: everything that changes the trained weights is an argument
    (``versions``, of skvqad, torch and skorch, stands for the code), and
    nothing that only changes the scoring is.

    Parameters
    ----------
    images : array of shape (n, C, H, W), torch.Tensor or UnitImages
        The training images in [0, 1]; the detector passes a converter that
        turns each batch of the user's array into floats when it is sliced.
    net_params : dict
        As for :func:`build_net`.
    seed : int
        Seeds the net's own generators (``VQVAENet(seed=...)``): torch's
        global random state is neither used nor changed.
    versions : tuple
        Not used by the training: part of the ``memory`` cache key.
    verbose : int, default=0
        As for :func:`build_net`; not part of the cache key.
    checkpoint_dir : str, path-like or None, default=None
        A folder where :class:`EpochCheckpoint` writes the training state at
        each epoch's end (``checkpoint.pt``), and from which a stopped fit of
        the same images, parameters, seed and code resumes after its last
        completed epoch; a checkpoint of another fit is refused. Not part of
        the cache key.

    Returns
    -------
    VQVAENet
        The trained net.
    """
    # The net draws from its own generators, seeded here: the global RNG is never touched,
    # so fits in other threads neither disturb this one nor are disturbed by it.
    params = dict(net_params, seed=seed)
    X = _resident(images, net_params["device"])
    if checkpoint_dir is None:
        net = build_net(params, verbose)
        net.fit(X)
        return net
    folder = Path(checkpoint_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "checkpoint.pt"
    import joblib

    key = joblib.hash((images, net_params, seed, versions))
    state = EpochCheckpoint.read(path, key)
    params["callbacks"] = [*params["callbacks"], ("checkpoint", EpochCheckpoint(path, key, state))]
    net = build_net(params, verbose).initialize()
    done = 0 if state is None else int(state["epochs"])
    if done < net.max_epochs:
        net.partial_fit(X, epochs=net.max_epochs - done)
    else:  # trained to the end already: the weights and history of the checkpoint
        net.notify("on_train_begin", X=X, y=None)
        net.notify("on_train_end", X=X, y=None)
    return net


@functools.lru_cache(maxsize=1)
def training_code_digest() -> str:
    """A digest of the source of the modules that define training: ``model``, ``net``, ``_images``.

    Part of the detector's ``memory`` cache key (with the versions of skvqad,
    torch and skorch): an edited model, loss, training loop or image
    conversion gives another key, so a cache never returns a network trained
    by other code under an unchanged ``__version__``.

    Returns
    -------
    str
        16 hexadecimal digits of the SHA-256 of the three files' bytes.

    Examples
    --------
    >>> from skvqad.net import training_code_digest
    >>> len(training_code_digest())
    16
    """
    from . import _images, model

    digest = hashlib.sha256()
    for source in (model.__file__, __file__, _images.__file__):
        digest.update(Path(source).read_bytes())
    return digest.hexdigest()[:16]


def _resident(images: UnitImages, device: str):
    """The training images as a float tensor on a GPU if they fit, else as they are.

    On CUDA, training data lives on the GPU when its float32 copy takes under
    a quarter of the free memory, so that epochs run without host-to-device
    copies; it is converted and sent in chunks, so the host never holds it
    all as floats. Otherwise (and on the CPU) :class:`~skvqad.net.ImageBatches`
    converts each batch when it is used.
    """
    if device.startswith("cuda"):
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        height, width, channels = images.shape
        if 4 * len(images) * channels * height * width <= free // 4:
            out = torch.empty((len(images), channels, height, width), device=device)
            for start in range(0, len(images), 4096):
                out[start : start + 4096] = torch.from_numpy(images[start : start + 4096]).to(device)
            return out
    return images

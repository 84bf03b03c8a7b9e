"""Save and load a fitted detector without pickle.

``joblib.dump``/``pickle`` work too, but loading a pickle runs whatever code
the file names: only load pickles you made. The format here cannot run code:
the payload, written with :func:`torch.save`, holds only plain values, the
constructor parameters as a JSON string, the training history as JSON, the
fitted scalars and arrays as tensors and numbers, and the network's
``state_dict``; :func:`load_detector` reads it with
``torch.load(weights_only=True)``, which refuses anything else.

The file is a 8-byte signature, the SHA-256 digest of the payload, then the
payload. :func:`load_detector` checks the digest before it reads anything
else, so a file changed anywhere, by a single byte, is refused with a
``ValueError`` naming it; it then refuses non-finite weights and validates
every stored parameter and fitted value as ``fit`` would.

What is not stored: ``callbacks`` (training-time objects), a
:class:`joblib.Memory` given as ``memory`` (a path is kept) and a
``RandomState`` given as ``random_state``, which come back as None; an
optimizer outside :mod:`torch.optim` comes back as :class:`torch.optim.Adam`
with a warning. None of these affect scoring. The optimizer's state is not
stored either: a loaded detector scores; ``fit`` trains it anew.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import tempfile
import warnings
from numbers import Integral
from pathlib import Path

import numpy as np
import torch
from skorch.history import History

from ._version import __version__

__all__ = ["save_detector", "load_detector"]

FORMAT = "skvqad.VQVAEAnomalyDetector"
FORMAT_VERSION = 2
#: The first bytes of a model file; the SHA-256 digest of the payload follows.
SIGNATURE = b"SKVQAD\x00\x02"


def _json_default(value):
    """NumPy scalars and arrays (from a search's sampled parameters) as JSON."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"{value!r} ({type(value).__name__}) cannot be saved as JSON")


def _params_to_json(detector) -> str:
    params = detector.get_params(deep=False)
    optimizer = params["optimizer"]
    name = getattr(optimizer, "__qualname__", None)
    params["optimizer"] = f"{optimizer.__module__}.{name}" if name else repr(optimizer)
    if params["callbacks"]:
        warnings.warn(
            "callbacks are not saved (they act during training only); the loaded "
            "detector has callbacks=None.",
            UserWarning,
            stacklevel=3,
        )
    params["callbacks"] = None
    if not isinstance(params["memory"], (str, type(None))):
        params["memory"] = os.fspath(params["memory"]) if isinstance(params["memory"], os.PathLike) else None
    if isinstance(params["random_state"], np.integer):
        params["random_state"] = int(params["random_state"])
    elif not isinstance(params["random_state"], (int, type(None))):
        params["random_state"] = None
    if isinstance(params["device"], torch.device):
        params["device"] = str(params["device"])
    return json.dumps(params, default=_json_default)


def _optimizer_from_name(name: str):
    """A torch.optim class by its dotted name; Adam (with a warning) otherwise."""
    module, _, cls = name.rpartition(".")
    optimizer = getattr(torch.optim, cls, None)
    if module.startswith("torch.optim") and isinstance(optimizer, type) and issubclass(
        optimizer, torch.optim.Optimizer
    ):
        return optimizer
    warnings.warn(
        f"The optimizer {name} is not in torch.optim and is not imported on load; "
        "the loaded detector has optimizer=torch.optim.Adam (scoring is unaffected).",
        UserWarning,
        stacklevel=3,
    )
    return torch.optim.Adam


def save_detector(detector, path) -> None:
    """Write a fitted :class:`~skvqad.VQVAEAnomalyDetector` to ``path``.

    The file is written to a temporary file in the same folder and renamed
    into place, so ``path`` never holds a half-written model.

    Parameters
    ----------
    detector : VQVAEAnomalyDetector
        A fitted detector.
    path : str or path-like
        Destination file (by convention ``*.skvqad``).

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
    >>> from skvqad.persistence import save_detector
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     save_detector(detector, Path(tmp) / "detector.skvqad")
    ...     print(sorted(p.name for p in Path(tmp).iterdir()))
    ['detector.skvqad']
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(detector)
    feature_range = detector.feature_range_
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "skvqad_version": __version__,
        "params": _params_to_json(detector),
        "history": json.dumps(detector.history_.to_list(), default=_json_default),
        "fitted": {
            "offset_": float(detector.offset_),
            "image_shape_": [int(s) for s in detector.image_shape_],
            "n_features_in_": int(detector.n_features_in_),
            "n_downsampling_": int(detector.n_downsampling_),
            "feature_range_": (
                None if feature_range is None
                else [torch.as_tensor(np.asarray(a, dtype=np.float64)) for a in feature_range]
            ),
            "bank_": (
                None if getattr(detector, "bank_", None) is None
                else detector.bank_.detach().cpu().contiguous()
            ),
        },
        "state_dict": {k: v.detach().cpu() for k, v in detector.net_.module_.state_dict().items()},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    body = buffer.getvalue()
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as open() would create it, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            f.write(SIGNATURE + hashlib.sha256(body).digest() + body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_detector(path, device=None):
    """Read a detector written by :func:`save_detector`.

    Parameters
    ----------
    path : str or path-like
        The file.
    device : str or None, default=None
        Where to put the network; None keeps the saved ``device`` parameter,
        except that a CUDA device on a machine without CUDA becomes ``"cpu"``
        (with a warning).

    Returns
    -------
    VQVAEAnomalyDetector
        A fitted detector that scores as the saved one did.

    Raises
    ------
    ValueError
        If the file is not a skvqad model, or was changed after it was
        written (its SHA-256 digest does not match), or holds non-finite
        weights or a parameter or fitted value that ``fit`` would refuse; the
        message names the file.

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
    >>> from skvqad.persistence import load_detector, save_detector
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     save_detector(detector, Path(tmp) / "detector.skvqad")
    ...     loaded = load_detector(Path(tmp) / "detector.skvqad", device="cpu")
    >>> loaded.image_shape_, loaded.get_params()["n_embeddings"]
    ((8, 8, 1), 8)
    >>> bool(np.allclose(loaded.score_samples(X), detector.score_samples(X)))
    True
    """
    from .detector import VQVAEAnomalyDetector, _build_net, _resolve_device

    payload = _read_payload(path)
    if payload.get("skvqad_version") != __version__:
        warnings.warn(
            f"{path} was written by skvqad {payload.get('skvqad_version')} and is loaded "
            f"by skvqad {__version__}; check its scores.",
            UserWarning,
            stacklevel=2,
        )
    try:
        params = json.loads(payload["params"])
        fitted = payload["fitted"]
        state_dict = payload["state_dict"]
        history = json.loads(payload["history"])
        if not (isinstance(params, dict) and isinstance(fitted, dict)
                and isinstance(state_dict, dict) and isinstance(history, list)):
            raise TypeError("params, fitted and state_dict must be dicts, history a list")
        params["optimizer"] = _optimizer_from_name(str(params["optimizer"]))
        offset = fitted["offset_"]
        image_shape = fitted["image_shape_"]
        n_features = fitted["n_features_in_"]
        n_downsampling = fitted["n_downsampling_"]
        feature_range = fitted["feature_range_"]
        bank = fitted["bank_"]
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is an incomplete skvqad model file: {exc!r}") from exc
    _check_fitted(path, offset, image_shape, n_features, n_downsampling, feature_range)
    if bank is not None and not (
        torch.is_tensor(bank) and bank.dtype == torch.float32 and bank.ndim == 2
        and len(bank) >= 1 and bank.shape[1] == params.get("embedding_dim")
        and bool(torch.isfinite(bank).all())
    ):
        raise ValueError(f"{path}: bank_ is not a finite (k, embedding_dim) float32 tensor.")
    for name, tensor in state_dict.items():
        if not torch.is_tensor(tensor) or (
            tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
        ):
            raise ValueError(f"{path}: the weight {name!r} is not a finite tensor.")

    known = set(VQVAEAnomalyDetector().get_params())
    unknown = sorted(set(params) - known)
    if unknown:
        warnings.warn(
            f"{path} has parameters this skvqad ({__version__}) does not know, ignored: {unknown}.",
            UserWarning,
            stacklevel=2,
        )
        params = {k: v for k, v in params.items() if k in known}
    for key in ("image_shape", "ssim_constants"):  # JSON turns tuples into lists
        if params.get(key) is not None:
            params[key] = tuple(params[key])
    if params.get("memory") is not None:
        warnings.warn(
            f"{path} was saved with memory={params['memory']!r}; the loaded detector has "
            "memory=None (a cache folder named by a file is not used unasked): set it "
            "again to cache refits.",
            UserWarning,
            stacklevel=2,
        )
        params["memory"] = None
    if device is not None:
        params["device"] = device
    elif str(params["device"]).startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(
            f"{path} was saved with device={params['device']!r} but CUDA is not "
            "available; loading on the CPU.",
            UserWarning,
            stacklevel=2,
        )
        params["device"] = "cpu"
    detector = VQVAEAnomalyDetector(**params)
    try:  # what fit checks first
        detector._validate_params()
        detector._scoring_params()
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path} holds a parameter that fit would refuse: {exc}") from exc

    height, width, channels = image_shape
    device = _resolve_device(detector.device)
    with torch.random.fork_rng(devices=[]):  # initialize() draws weights we overwrite
        net = _build_net(detector._net_params(channels, n_downsampling, device)).initialize()
    try:
        net.module_.load_state_dict(state_dict)
    except RuntimeError as exc:
        raise ValueError(f"{path}: the weights do not fit the saved parameters: {exc}") from exc
    net.history = History(history)

    detector.net_ = net
    detector.history_ = net.history
    detector.offset_ = float(offset)
    detector.image_shape_ = (height, width, channels)
    detector.n_features_in_ = int(n_features)
    detector.n_downsampling_ = int(n_downsampling)
    detector.feature_range_ = (
        None if feature_range is None else tuple(t.numpy() for t in feature_range)
    )
    detector.bank_ = None if bank is None else bank.to(net.device)
    return detector


def _read_payload(path) -> dict:
    """The payload of a model file, its digest checked before it is unpickled."""
    with open(path, "rb") as f:
        data = f.read()
    head, digest, body = data[:8], data[8:40], data[40:]
    if head != SIGNATURE:
        raise ValueError(
            f"{path} is not a readable skvqad model file (no skvqad signature: another "
            "format, a file written by an older skvqad, or damaged at its start)."
        )
    if hashlib.sha256(body).digest() != digest:
        raise ValueError(
            f"{path} is damaged: its content does not match the SHA-256 digest written "
            "with it (the file was changed or corrupted after it was saved)."
        )
    try:
        payload = torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)
    except Exception as exc:  # a payload that was damaged before its digest was taken
        raise ValueError(
            f"{path} is not a readable skvqad model file: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a skvqad model file (no {FORMAT!r} header).")
    if payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path} uses format version {payload.get('format_version')}, this skvqad "
            f"({__version__}) reads version {FORMAT_VERSION}."
        )
    return payload


def _check_fitted(path, offset, image_shape, n_features, n_downsampling, feature_range):
    """Refuse fitted values that no ``fit`` could have produced."""
    def positive_int(v):
        return isinstance(v, Integral) and not isinstance(v, bool) and v > 0

    problems = []
    if not isinstance(offset, float) or not math.isfinite(offset):
        problems.append(f"offset_={offset!r} is not a finite float")
    if not (isinstance(image_shape, list) and len(image_shape) == 3
            and all(positive_int(v) for v in image_shape)):
        problems.append(f"image_shape_={image_shape!r} is not three positive ints")
    elif n_features != math.prod(image_shape):
        problems.append(f"n_features_in_={n_features!r} is not H * W * C of {image_shape}")
    if not positive_int(n_downsampling):
        problems.append(f"n_downsampling_={n_downsampling!r} is not a positive int")
    if feature_range is not None and not (
        isinstance(feature_range, list) and len(feature_range) == 2
        and all(torch.is_tensor(t) and t.shape == (n_features,) and bool(torch.isfinite(t).all())
                for t in feature_range)
    ):
        problems.append("feature_range_ is not two finite arrays of n_features_in_ values")
    if problems:
        raise ValueError(f"{path} holds fitted values that fit would not produce: "
                         + "; ".join(problems) + ".")

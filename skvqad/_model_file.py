"""The model file format of :mod:`skvqad.persistence` (private).

Writing and reading only: :func:`write_detector` takes a fitted detector,
:func:`read_detector` the class to rebuild, so that this module sits below
:mod:`skvqad.detector` and imports run one way (``detector`` -> this module
-> ``net``). The format is described in :mod:`skvqad.persistence`.
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
from .net import build_net, resolve_device

__all__ = ["write_detector", "read_detector"]

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
            stacklevel=4,
        )
    params["callbacks"] = None
    if isinstance(params.get("checkpoint_dir"), os.PathLike):
        params["checkpoint_dir"] = os.fspath(params["checkpoint_dir"])
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
        stacklevel=4,
    )
    return torch.optim.Adam


def write_detector(detector, path) -> None:
    """Write fitted ``detector`` to ``path`` (see :func:`skvqad.persistence.save_detector`)."""
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
            "mixed_precision_": (
                None if getattr(detector, "mixed_precision_", None) is None
                else bool(detector.mixed_precision_)
            ),
            "integer_bits_": (
                None if getattr(detector, "integer_bits_", None) is None
                else int(detector.integer_bits_)
            ),
            "bank_": (
                None if getattr(detector, "bank_", None) is None
                else torch.from_numpy(np.ascontiguousarray(detector.bank_, dtype=np.float32))
            ),
            "code_counts_": (
                None if getattr(detector, "code_counts_", None) is None
                else torch.from_numpy(np.ascontiguousarray(detector.code_counts_, dtype=np.int64))
            ),
            "training_digest": getattr(detector, "_training_digest", None),
            "map_scale_": (None if getattr(detector, "map_scale_", None) is None
                           else float(detector.map_scale_)),
            "score_calibration": (
                None if getattr(detector, "score_calibration_", None) is None
                else json.dumps({"maps": detector.score_calibration_,
                                 "params": detector.calibration_params_},
                                default=_json_default)
            ),
        },
        "state_dict": {k: v.detach().cpu() for k, v in detector.net_.module_.state_dict().items()},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    body = buffer.getvalue()
    path = Path(path)
    if not path.parent.is_dir():  # mkstemp's error would name its temporary file
        raise FileNotFoundError(f"Cannot save to {path}: the folder {path.parent} does not exist.")
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


def read_detector(cls, path, device=None):
    """A fitted ``cls`` read from ``path`` (see :func:`skvqad.persistence.load_detector`).

    ``cls`` is :class:`~skvqad.VQVAEAnomalyDetector` or a subclass: the
    caller passes it, so that this module does not import the detector.
    """
    payload = _read_payload(path)
    if payload.get("skvqad_version") != __version__:
        warnings.warn(
            f"{path} was written by skvqad {payload.get('skvqad_version')} and is loaded "
            f"by skvqad {__version__}; check its scores.",
            UserWarning,
            stacklevel=3,
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
        integer_bits = fitted.get("integer_bits_")  # absent from files written before it existed
        bf16 = fitted.get("mixed_precision_")  # likewise: those resolve mixed_precision again
        # Absent from files written before the code prior existed.
        counts = fitted.get("code_counts_")
        digest = fitted.get("training_digest")
        map_scale = fitted.get("map_scale_")
        calibration = fitted.get("score_calibration")
        if calibration is not None:
            calibration = json.loads(calibration)
            maps, calibrated = calibration["maps"], calibration["params"]
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is an incomplete skvqad model file: {exc!r}") from exc
    _check_fitted(path, offset, image_shape, n_features, n_downsampling, feature_range)
    if not (integer_bits is None or (type(integer_bits) is int and integer_bits in (8, 16))):
        raise ValueError(f"{path}: integer_bits_ is {integer_bits!r}, not 8, 16 or None.")
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

    known = set(cls().get_params())
    unknown = sorted(set(params) - known)
    if unknown:
        warnings.warn(
            f"{path} has parameters this skvqad ({__version__}) does not know, ignored: {unknown}.",
            UserWarning,
            stacklevel=3,
        )
        params = {k: v for k, v in params.items() if k in known}
    for key in ("image_shape", "ssim_constants", "score_map"):  # JSON turns tuples into lists
        if isinstance(params.get(key), list):
            params[key] = tuple(params[key])
    if params.get("memory") is not None:
        warnings.warn(
            f"{path} was saved with memory={params['memory']!r}; the loaded detector has "
            "memory=None (a cache folder named by a file is not used unasked): set it "
            "again to cache refits.",
            UserWarning,
            stacklevel=3,
        )
        params["memory"] = None
    if device is not None:
        params["device"] = device
    elif str(params["device"]).startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(
            f"{path} was saved with device={params['device']!r} but CUDA is not "
            "available; loading on the CPU.",
            UserWarning,
            stacklevel=3,
        )
        params["device"] = "cpu"
    detector = cls(**params)
    try:  # what fit checks first
        detector._validate_params()
        detector._scoring_params()
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path} holds a parameter that fit would refuse: {exc}") from exc
    _check_prior(path, counts, calibration and (maps, calibrated), detector.n_embeddings)

    height, width, channels = image_shape
    device = resolve_device(detector.device)
    if bf16 is not None and not isinstance(bf16, bool):
        raise ValueError(f"{path}: mixed_precision_ is {bf16!r}, not a bool.")
    net_params = detector._net_params(channels, n_downsampling, device)
    if bf16 is not None:  # the precision fit resolved, whatever this machine would choose
        net_params["bf16"] = bf16
    # Seeded: initialize() draws the weights we overwrite from the net's own generator.
    net = build_net(dict(net_params, seed=0)).initialize()
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
    detector.integer_bits_ = integer_bits
    detector.mixed_precision_ = net.bf16_enabled
    detector.bank_ = None if bank is None else bank.numpy()
    if counts is not None:
        detector.code_counts_ = counts.numpy()
    if isinstance(digest, str):
        detector._training_digest = digest
    if map_scale is not None:
        if not (isinstance(map_scale, float) and math.isfinite(map_scale)):
            raise ValueError(f"{path}: map_scale_={map_scale!r} is not a finite float.")
        detector.map_scale_ = map_scale
    if calibration is not None:
        detector.score_calibration_ = {k: (float(v[0]), float(v[1])) for k, v in maps.items()}
        for key in ("ssim_constants",):  # JSON turns tuples into lists
            if calibrated.get(key) is not None:
                calibrated[key] = tuple(calibrated[key])
        detector.calibration_params_ = calibrated
    return detector


def _check_prior(path, counts, calibration, n_embeddings) -> None:
    """Refuse code counts and calibrations that no ``fit`` could have produced."""
    if counts is not None and not (
        torch.is_tensor(counts) and counts.dtype == torch.int64 and counts.ndim == 3
        and counts.shape[2] == n_embeddings and bool((counts >= 0).all())
        and len(set(counts.sum(-1).flatten().tolist())) == 1
    ):
        raise ValueError(f"{path}: code_counts_ is not an (h, w, n_embeddings) int64 tensor of "
                         "counts with the same total at every position.")
    if calibration is not None:
        maps, calibrated = calibration
        if not (isinstance(maps, dict) and isinstance(calibrated, dict) and all(
            isinstance(v, list) and len(v) == 2
            and all(isinstance(x, float) and math.isfinite(x) for x in v)
            for v in maps.values()
        )):
            raise ValueError(f"{path}: the score calibration is not (mean, std) pairs of "
                             "finite floats with its parameters.")


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

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

from ._model_file import read_detector, write_detector
from .detector import VQVAEAnomalyDetector

__all__ = ["save_detector", "load_detector"]


def save_detector(detector, path) -> None:
    """Write a fitted :class:`~skvqad.VQVAEAnomalyDetector` to ``path``.

    The same as ``detector.save(path)``. The file is written to a temporary
    file in the same folder and renamed into place, so ``path`` never holds
    a half-written model.

    Parameters
    ----------
    detector : VQVAEAnomalyDetector
        A fitted detector.
    path : str or path-like
        Destination file (by convention ``*.skvqad``).

    See Also
    --------
    load_detector : Read it back.
    """
    write_detector(detector, path)


def load_detector(path, device=None) -> VQVAEAnomalyDetector:
    """Read a detector written by :func:`save_detector`.

    The same as ``VQVAEAnomalyDetector.load(path, device)``.

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

    See Also
    --------
    skvqad.VQVAEAnomalyDetector.load : The same, with an example.
    """
    return read_detector(VQVAEAnomalyDetector, path, device)

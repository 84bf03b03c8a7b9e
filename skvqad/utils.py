"""Small helpers for scripts that report results."""

from __future__ import annotations

import platform

__all__ = ["environment"]


def environment(device="cpu") -> dict:
    """The device and package versions to record beside a result.

    Parameters
    ----------
    device : str or torch.device, default="cpu"
        The torch device the result was computed on.

    Returns
    -------
    dict
        ``{"device": <GPU name or "CPU, <n> threads">, "versions": {...}}`` with
        the versions of skvqad, torch, skorch, scikit-learn and Python, and
        the digest of skvqad's training code
        (:func:`skvqad.net.training_code_digest`), which tells apart results
        of code that changed under one version number.

    Examples
    --------
    >>> from skvqad.utils import environment
    >>> sorted(environment()["versions"])
    ['python', 'sklearn', 'skorch', 'skvqad', 'torch', 'training code']
    """
    import sklearn
    import skorch
    import torch

    from ._version import __version__
    from .net import training_code_digest

    if str(device).startswith("cuda"):
        name = torch.cuda.get_device_name(torch.device(device))
    else:
        name = f"CPU, {torch.get_num_threads()} threads"
    return {
        "device": name,
        "versions": {
            "skvqad": __version__,
            "torch": torch.__version__,
            "skorch": skorch.__version__,
            "sklearn": sklearn.__version__,
            "python": platform.python_version(),
            "training code": training_code_digest(),
        },
    }

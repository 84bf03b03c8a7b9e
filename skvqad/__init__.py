"""skvqad: image anomaly detection with Vector-Quantized VAEs.

A scikit-learn compatible :class:`VQVAEAnomalyDetector` trained with skorch,
scoring images by the SSIM map, the alignment map or their product
(Gangloff et al., 2022).

``import skvqad`` is fast: torch, skorch and scikit-learn are imported only
when one of the public names below is first used.
"""

from importlib import import_module

from ._version import __version__

_LAZY = {
    "VQVAEAnomalyDetector": "skvqad.detector",
    "DataRangeWarning": "skvqad._images",
}

__all__ = ["VQVAEAnomalyDetector", "DataRangeWarning", "__version__"]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'skvqad' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))

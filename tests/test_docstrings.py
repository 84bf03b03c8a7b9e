"""Docstring pieces written once (skvqad._docstrings.fill_doc) are filled everywhere."""

import importlib
import inspect
import pkgutil
import re

import skvqad

PLACEHOLDER = re.compile(r"^\s*\{\w+\}\s*$", flags=re.M)


def public_docstrings():
    """Every public module, class, function and method of skvqad, with its docstring."""
    for info in pkgutil.walk_packages(skvqad.__path__, "skvqad."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        module = importlib.import_module(info.name)
        yield info.name, module.__doc__
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            yield f"{info.name}.{name}", obj.__doc__
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    member = getattr(member, "__func__", member)
                    if not attr.startswith("_") and callable(member):
                        yield f"{info.name}.{name}.{attr}", member.__doc__


def test_no_docstring_keeps_a_placeholder():
    docs = dict(public_docstrings())
    assert "skvqad.detector.VQVAEAnomalyDetector.predict" in docs
    assert "skvqad.maps.anomaly_map" in docs
    left = sorted(name for name, doc in docs.items() if doc and PLACEHOLDER.search(doc))
    assert not left, left
    # The shared pieces reached the detector's methods and the maps' functions.
    assert "X : array-like of shape" in docs["skvqad.detector.VQVAEAnomalyDetector.predict"]
    assert "ssim_sigma : float, default=1.5" in docs["skvqad.maps.anomaly_map"]

"""CIFAR-10: the official python release, downloaded once and verified."""

from __future__ import annotations

import os
import pickle
import tarfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sklearn.utils import Bunch

from ._download import _download, _md5_of, get_data_home
from ._io import _bunch

#: Official CIFAR-10 python release (Krizhevsky, 2009) and its md5.
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"

_CIFAR10_FOLDER = "cifar-10-batches-py"
_CIFAR10_DESCR = """\
CIFAR-10 (Krizhevsky, "Learning Multiple Layers of Features from Tiny Images",
2009): 60,000 32x32 RGB photographs in 10 classes (airplane, automobile, bird,
cat, deer, dog, frog, horse, ship, truck), 5,000 training and 1,000 test
images per class. Official python release: {url}.

For one-class anomaly detection, train on the images of one class and test
on the whole test set, the other nine classes being the anomalies.
"""

def _read_cifar10_archive(path: Path) -> dict:
    """The unpickled batches of a verified CIFAR-10 archive, by file name."""
    wanted = {f"data_batch_{i}" for i in range(1, 6)} | {"test_batch", "batches.meta"}
    batches = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                folder, _, name = member.name.rpartition("/")
                if member.isfile() and name in wanted and folder.endswith(_CIFAR10_FOLDER):
                    with tar.extractfile(member) as file:
                        batches[name] = pickle.load(file, encoding="bytes")
    except (OSError, EOFError, tarfile.TarError, pickle.UnpicklingError) as exc:
        raise OSError(
            f"Cannot read the CIFAR-10 archive {path} ({exc}). Delete it and call "
            "fetch_cifar10 again to download it anew."
        ) from exc
    missing = sorted(wanted - set(batches))
    if missing:
        raise OSError(
            f"The archive {path} lacks {', '.join(f'{_CIFAR10_FOLDER}/{m}' for m in missing)}: "
            "it is not the CIFAR-10 python release. Delete it and call fetch_cifar10 again."
        )
    return batches


def _cifar10_arrays(batches: Sequence[dict]) -> tuple[np.ndarray, np.ndarray]:
    data = np.concatenate([np.asarray(b[b"data"], dtype=np.uint8) for b in batches])
    labels = np.concatenate([np.asarray(b[b"labels"], dtype=np.int64) for b in batches])
    # Each row holds the red, then the green, then the blue 32x32 plane.
    images = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return images, labels


def fetch_cifar10(data_home: str | os.PathLike | None = None, download: bool = True) -> Bunch:
    """Load CIFAR-10, downloading the official archive (163 MB) once.

    The archive ``cifar-10-python.tar.gz`` is saved in the data home and its
    md5 is checked, after a download and on every later call, before
    anything in it is unpickled. It is read in memory: nothing is extracted.

    Parameters
    ----------
    data_home : str, path-like or None, default=None
        Cache folder; see :func:`get_data_home`.
    download : bool, default=True
        Download the archive from :data:`CIFAR10_URL` when it is not in the
        cache, or when the cached one has the wrong md5 (it is deleted first,
        with a warning). With False, a missing or damaged archive raises an
        OSError.

    Returns
    -------
    data : sklearn.utils.Bunch
        X_train : ndarray of shape (50000, 32, 32, 3), uint8
            Training images, RGB.
        y_train : ndarray of shape (50000,), int64
            Their classes, indices into ``target_names``.
        X_test : ndarray of shape (10000, 32, 32, 3), uint8
            Test images.
        y_test : ndarray of shape (10000,), int64
            Their classes.
        target_names : list of str
            The ten class names, ``'airplane'`` to ``'truck'``.
        DESCR : str
            Description of the data set.

    Raises
    ------
    OSError
        The archive is not cached (or damaged) and ``download`` is False, the
        download failed (nothing is left behind), the downloaded archive's md5
        is wrong, or ``data_home`` is a file (:class:`NotADirectoryError`).

    Examples
    --------
    With ``download=False``, a data home without the archive raises:

    >>> import tempfile
    >>> from skvqad.datasets import fetch_cifar10
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     try:
    ...         fetch_cifar10(data_home=tmp, download=False)
    ...     except OSError:
    ...         print("not cached")
    not cached

    One-class setting: train on the cats, test on all classes (downloads
    163 MB the first time).

    >>> cifar = fetch_cifar10()  # doctest: +SKIP
    >>> cat = cifar.target_names.index("cat")  # doctest: +SKIP
    >>> X_train = cifar.X_train[cifar.y_train == cat]  # doctest: +SKIP
    >>> anomalous = cifar.y_test != cat  # doctest: +SKIP
    """
    url, md5 = CIFAR10_URL, CIFAR10_MD5
    path = get_data_home(data_home) / "cifar-10-python.tar.gz"
    if path.exists():
        found = _md5_of(path)
        if found != md5 and not download:
            raise OSError(
                f"The cached CIFAR-10 archive {path} is corrupt or incomplete (md5 {found}, "
                f"expected {md5}). Delete it, or call fetch_cifar10 with download=True to "
                "download it anew."
            )
        if found != md5:
            warnings.warn(
                f"The cached CIFAR-10 archive {path} is corrupt or incomplete (md5 {found}, "
                f"expected {md5}): deleted, downloading it anew.",
                UserWarning,
                stacklevel=2,
            )
            path.unlink()
            _download(url, path, md5)
    elif not download:
        raise OSError(
            f"CIFAR-10 is not in the cache ({path} does not exist) and download=False. Pass "
            f"download=True, or download {url} by hand to {path}."
        )
    else:
        _download(url, path, md5)
    batches = _read_cifar10_archive(path)
    X_train, y_train = _cifar10_arrays([batches[f"data_batch_{i}"] for i in range(1, 6)])
    X_test, y_test = _cifar10_arrays([batches["test_batch"]])
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in batches["batches.meta"][b"label_names"]]
    return _bunch(
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        target_names=names,
        DESCR=_CIFAR10_DESCR.format(url=url),
    )

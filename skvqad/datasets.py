"""Load image anomaly-detection data sets as numpy arrays.

scikit-learn style loaders (``fetch_*`` downloads, ``load_*`` reads a folder
the user already has) that return a :class:`sklearn.utils.Bunch` of uint8
images ready for :class:`~skvqad.VQVAEAnomalyDetector`:

- :func:`fetch_cifar10`: the official CIFAR-10 python release, downloaded once;
- :func:`load_image_folder`: any ``root/<split>/<class>/*.png`` tree;
- :func:`load_mvtec_ad`: the MVTec AD layout, with pixel masks;
- :func:`load_ucsd_ped`: the UCSD Anomaly Dataset (Ped1, Ped2), with frame
  labels and pixel masks;
- :func:`load_folder_with_masks`: normal images and defective images with
  masks beside them (e.g. the Magnetic Tile Defect set).

Images are ``(n, H, W)`` for grayscale and ``(n, H, W, 3)`` for RGB.
Pixel masks are boolean ``(n, H, W)``, True on defective pixels. Test
labels are a boolean ``anomalous`` array: note that the detector's own
convention is the opposite sign (``y == 1`` for *normal* images, as
``predict`` returns), so pass ``np.where(anomalous, -1, 1)`` as ``y``.

Reading image files needs Pillow, an optional dependency
(``pip install "skvqad[images]"``); it is imported only by the functions that
read images, and :func:`fetch_cifar10` does not need it.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import pickle
import re
import tarfile
import urllib.request
import warnings
from collections.abc import Iterable, Sequence
from numbers import Integral
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sklearn.utils import Bunch

__all__ = [
    "CIFAR10_MD5",
    "CIFAR10_URL",
    "IMAGE_EXTENSIONS",
    "fetch_cifar10",
    "get_data_home",
    "image_folder_to_npy",
    "load_folder_with_masks",
    "load_image_folder",
    "load_mvtec_ad",
    "load_ucsd_ped",
]

#: Official CIFAR-10 python release (Krizhevsky, 2009) and its md5.
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"

#: File extensions read as images (compared case-insensitively).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

#: Pillow modes counted as grayscale by ``color_mode=None``.
_GRAYSCALE_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})

_COLOR_MODES = (None, "rgb", "grayscale")

_CIFAR10_FOLDER = "cifar-10-batches-py"
_CIFAR10_DESCR = """\
CIFAR-10 (Krizhevsky, "Learning Multiple Layers of Features from Tiny Images",
2009): 60,000 32x32 RGB photographs in 10 classes (airplane, automobile, bird,
cat, deer, dog, frog, horse, ship, truck), 5,000 training and 1,000 test
images per class. Official python release: {url}.

For one-class anomaly detection, train on the images of one class and test
on the whole test set, the other nine classes being the anomalies.
"""


# ----------------------------------------------------------------- helpers
def _import_pil():
    """``PIL.Image``, or an ImportError that says how to install Pillow."""
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError(
            "Reading image files needs Pillow, an optional dependency of skvqad that is "
            'not installed: pip install "skvqad[images]" (or pip install pillow).'
        ) from exc
    return Image


def _bunch(**fields) -> Bunch:
    """A :class:`sklearn.utils.Bunch`; scikit-learn is imported on first use, so that
    importing this module (and starting joblib workers) stays light."""
    from sklearn.utils import Bunch

    return Bunch(**fields)


def _resample(Image, name: str):
    """A Pillow resampling filter by name (``Image.Resampling`` from Pillow 9.1)."""
    return getattr(getattr(Image, "Resampling", Image), name)


def _check_image_size(image_size) -> tuple[int, int] | None:
    """``image_size`` as ``(height, width)``, or None."""
    if image_size is None:
        return None
    if isinstance(image_size, Integral) and not isinstance(image_size, bool):
        size = (int(image_size), int(image_size))
    elif (
        isinstance(image_size, (tuple, list))
        and len(image_size) == 2
        and all(isinstance(s, Integral) and not isinstance(s, bool) for s in image_size)
    ):
        size = (int(image_size[0]), int(image_size[1]))
    else:
        size = None
    if size is None or min(size) < 1:
        raise ValueError(
            "image_size must be a positive int, a (height, width) pair of positive ints, or "
            f"None to keep the files' size; got {image_size!r}."
        )
    return size


def _check_color_mode(color_mode) -> None:
    if color_mode not in _COLOR_MODES:
        raise ValueError(
            f"color_mode must be None (keep the files' own mode), 'rgb' or 'grayscale'; "
            f"got {color_mode!r}."
        )


def _is_hidden(path: Path) -> bool:
    return path.name.startswith(".")


def _ends_with(path: Path, suffix: str) -> bool:
    return path.name.lower().endswith(suffix.lower())


def _image_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name."""
    with os.scandir(folder) as entries:
        names = [
            e.name
            for e in entries
            if not e.name.startswith(".")
            and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS
            and e.is_file()
        ]
    return [folder / name for name in sorted(names)]


def _subfolders(folder: Path) -> list[Path]:
    """The visible sub-folders of ``folder``, sorted by name."""
    return sorted((p for p in folder.iterdir() if p.is_dir() and not _is_hidden(p)), key=lambda p: p.name)


def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        if path.exists():
            raise NotADirectoryError(f"{what} {path} is a file, not a folder.")
        raise FileNotFoundError(f"{what} {path} does not exist.")
    return path


def _names(paths: Iterable[Path]) -> str:
    names = [p.name for p in paths]
    return ", ".join(repr(n) for n in names) if names else "none"


def _as_path_list(paths, name: str) -> list[Path]:
    """A path or a list of paths as a list of Paths (None: empty list)."""
    if paths is None:
        return []
    if isinstance(paths, (str, os.PathLike)):
        return [Path(paths)]
    try:
        return [Path(p) for p in paths]
    except TypeError as exc:
        raise TypeError(f"{name} must be a path or a list of paths; got {paths!r}.") from exc


def _filenames(paths: Sequence[Path]) -> np.ndarray:
    return np.array([str(p) for p in paths], dtype=str)


def _to_8bit(image, path: Path):
    """16-bit grayscale scaled to 8 bit (Pillow's ``convert("L")`` would clip it)."""
    if image.mode.startswith("I;16"):
        Image = _import_pil()
        pixels = np.asarray(image, dtype=np.uint16) // 257
        return Image.fromarray(pixels.astype(np.uint8), mode="L")
    if image.mode in ("I", "F"):
        raise OSError(
            f"{path} is a 32-bit ({image.mode}) image, which the loaders do not read: convert "
            "it to 8 or 16 bit."
        )
    return image


def _read_image(path: Path, size: tuple[int, int] | None, color_mode: str | None):
    """Read one image: ``(pixels, 'grayscale' | 'rgb' (the file's own), (h, w) of the file)``."""
    Image = _import_pil()
    try:
        # Reading the file at once is ~20 % faster than Pillow's many small reads.
        with open(path, "rb") as file, Image.open(io.BytesIO(file.read())) as image:
            kind = "grayscale" if image.mode in _GRAYSCALE_MODES else "rgb"
            target = color_mode or kind
            image = _to_8bit(image, path).convert("L" if target == "grayscale" else "RGB")
    except Exception as exc:  # Pillow's many: OSError, SyntaxError, DecompressionBombError, ...
        why = (
            "not an image file Pillow can decode"
            if isinstance(exc, Image.UnidentifiedImageError)
            else f"{type(exc).__name__}: {exc}"
        )
        raise OSError(
            f"Cannot read the image file {path} ({why}). Replace it, or move it out of the folder."
        ) from exc
    original = (image.height, image.width)
    if size is not None and original != size:
        image = image.resize((size[1], size[0]), _resample(Image, "BILINEAR"))
    return np.asarray(image, dtype=np.uint8), kind, original


def _read_images(paths: Sequence[Path], size: tuple[int, int] | None, color_mode: str | None) -> list:
    """:func:`_read_image` on each path (one joblib task)."""
    return [_read_image(path, size, color_mode) for path in paths]


def _load_images(
    paths: Sequence[Path],
    image_size: tuple[int, int] | None,
    color_mode: str | None,
    n_jobs: int | None = None,
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Read, convert and resize ``paths`` into one uint8 array; also the files' sizes.

    ``color_mode=None`` requires all files to be grayscale or all RGB;
    ``image_size=None`` requires all files to have the same size. With
    ``n_jobs``, the files are read by joblib workers, in chunks.
    """
    from joblib import Parallel, delayed, effective_n_jobs

    workers = min(effective_n_jobs(n_jobs), max(1, len(paths) // 256))
    if workers <= 1:
        results = _read_images(paths, image_size, color_mode)
    else:
        n_chunks = 4 * workers
        bounds = np.linspace(0, len(paths), n_chunks + 1).astype(int)
        chunks = Parallel(n_jobs=workers)(
            delayed(_read_images)(paths[start:stop], image_size, color_mode)
            for start, stop in zip(bounds[:-1], bounds[1:], strict=True)
        )
        results = [result for chunk in chunks for result in chunk]
    pixels = [r[0] for r in results]
    kinds = [r[1] for r in results]
    sizes = [r[2] for r in results]
    if color_mode is None and len(set(kinds)) > 1:
        gray = paths[kinds.index("grayscale")]
        rgb = paths[kinds.index("rgb")]
        raise ValueError(
            f"The images mix grayscale and color files (e.g. {gray} is grayscale, {rgb} is "
            "color): pass color_mode='rgb' or color_mode='grayscale' to convert them all."
        )
    if image_size is None and len(set(sizes)) > 1:
        first = sizes[0]
        other = next(i for i, s in enumerate(sizes) if s != first)
        raise ValueError(
            f"The images differ in size: {paths[0]} is {first[0]}x{first[1]} (height x width) "
            f"but {paths[other]} is {sizes[other][0]}x{sizes[other][1]}. Pass image_size "
            "(an int or a (height, width) pair) to resize them all."
        )
    return np.stack(pixels), sizes


def _read_mask(path: Path, size: tuple[int, int], threshold: int) -> tuple[np.ndarray, tuple[int, int], bool]:
    """One mask: ``(mask resized nearest, > threshold; (h, w) of the file;
    any pixel > threshold in the file)``."""
    Image = _import_pil()
    try:
        with Image.open(path) as image:
            image = _to_8bit(image, path).convert("L")
    except Exception as exc:  # Pillow's many: OSError, SyntaxError, DecompressionBombError, ...
        raise OSError(
            f"Cannot read the mask file {path} ({type(exc).__name__}: {exc}). Replace it."
        ) from exc
    original = (image.height, image.width)
    full = np.asarray(image) > threshold
    if original != size:
        image = image.resize((size[1], size[0]), _resample(Image, "NEAREST"))
        return np.asarray(image) > threshold, original, bool(full.any())
    return full, original, bool(full.any())


def _load_masks(
    image_paths: Sequence[Path],
    image_sizes: Sequence[tuple[int, int]],
    mask_paths: Sequence[Path | None],
    size: tuple[int, int],
    threshold: int = 127,
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks of ``size`` (all False where ``mask_paths`` is None).

    Also returns, per image, whether its mask file has any pixel above
    ``threshold`` at full resolution. A mask whose size differs from its
    image's is an error: it would not line up.
    """
    masks = np.zeros((len(mask_paths),) + tuple(size), dtype=bool)
    anything = np.zeros(len(mask_paths), dtype=bool)
    for i, mask_path in enumerate(mask_paths):
        if mask_path is None:
            continue
        masks[i], mask_size, anything[i] = _read_mask(mask_path, size, threshold)
        if mask_size != image_sizes[i]:
            raise ValueError(
                f"The mask {mask_path} is {mask_size[0]}x{mask_size[1]} pixels (height x width) "
                f"but its image {image_paths[i]} is {image_sizes[i][0]}x{image_sizes[i][1]}: "
                "a mask must have the size of its image to line up with it."
            )
    return masks, anything


def _output_size(images: np.ndarray) -> tuple[int, int]:
    return (int(images.shape[1]), int(images.shape[2]))


# --------------------------------------------------------------- data home
def get_data_home(data_home: str | os.PathLike | None = None) -> Path:
    """The folder where downloaded data sets are cached, created if missing.

    Parameters
    ----------
    data_home : str, path-like or None, default=None
        The folder. With None, the environment variable ``SKVQAD_DATA`` if
        it is set, else ``~/skvqad_data``. ``~`` is expanded.

    Returns
    -------
    data_home : pathlib.Path
        The folder, which exists.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from skvqad.datasets import get_data_home
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     home = get_data_home(Path(tmp) / "skvqad_data")
    ...     print(home.name, home.is_dir())
    skvqad_data True
    """
    if data_home is None:
        data_home = os.environ.get("SKVQAD_DATA") or Path("~") / "skvqad_data"
    path = Path(data_home).expanduser()
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(
            f"data_home {path} is a file, not a folder: pass the folder to cache data sets in."
        )
    path.mkdir(parents=True, exist_ok=True)
    return path


# ----------------------------------------------------------------- CIFAR-10
def _md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _download(url: str, path: Path, md5: str) -> None:
    """Download ``url`` to ``path`` through ``<path>.<pid>.part``; keep it only if its md5 is right."""
    part = path.with_name(f"{path.name}.{os.getpid()}.part")
    saved = False
    try:
        digest = hashlib.md5(usedforsecurity=False)
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as out:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            raise OSError(
                f"Downloading {url} to {path} failed ({type(exc).__name__}: {exc}); nothing "
                f"was saved. Check the network connection and call again, or download the "
                f"file by hand to {path}."
            ) from exc
        if digest.hexdigest() != md5:
            raise OSError(
                f"The file downloaded from {url} has md5 {digest.hexdigest()}, not the expected "
                f"{md5}: the download was corrupted or the file on the server changed. Nothing "
                f"was saved. Call again to retry, or download the file by hand to {path} and "
                "check its md5."
            )
        os.replace(part, path)
        saved = True
    finally:
        if not saved:
            try:
                part.unlink()
            except FileNotFoundError:
                pass


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


# ------------------------------------------------------------ image folder
def image_folder_to_npy(
    folder: str | os.PathLike,
    path: str | os.PathLike,
    *,
    image_size: int | tuple[int, int] | None = None,
    color_mode: str | None = None,
    chunk: int = 1024,
) -> np.ndarray:
    """Decode a folder of images once into a uint8 ``.npy`` file, read back as a memmap.

    For folders that do not fit in memory: the files (those directly in
    ``folder``, in name order) are decoded ``chunk`` at a time and written
    into the ``.npy`` file, so memory holds one chunk; the result opens with
    ``np.load(path, mmap_mode="r")`` and ``fit`` and ``score_samples`` read
    such a memmap batch by batch.

    Parameters
    ----------
    folder : str or path-like
        The folder of images.
    path : str or path-like
        The ``.npy`` file to write.
    image_size : int, (height, width) or None, default=None
        Resize every image (bilinear); None requires all to have one size.
    color_mode : {"grayscale", "rgb"} or None, default=None
        Convert every image; None requires all to be grayscale or all RGB.
    chunk : int, default=1024
        Images decoded at a time.

    Returns
    -------
    numpy.memmap of shape (n, H, W) or (n, H, W, 3), uint8
        The images, read-only, from ``path``.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from PIL import Image
    >>> from skvqad.datasets import image_folder_to_npy
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for i in range(5):
    ...         Image.new("L", (6, 4), color=10 * i).save(Path(tmp, f"{i}.png"))
    ...     images = image_folder_to_npy(tmp, Path(tmp) / "images.npy", chunk=2)
    ...     print(type(images).__name__, images.shape, images[:, 0, 0].tolist())
    memmap (5, 4, 6) [0, 10, 20, 30, 40]
    """
    size = _check_image_size(image_size)
    _check_color_mode(color_mode)
    paths = _image_files(_require_dir(Path(folder), "The image folder"))
    if not paths:
        raise ValueError(f"The folder {folder} holds no images ({', '.join(IMAGE_EXTENSIONS)}).")
    out = None
    for start in range(0, len(paths), chunk):
        images, _ = _load_images(paths[start : start + chunk], size, color_mode)
        if out is None:
            out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8,
                                            shape=(len(paths),) + images.shape[1:])
        elif images.shape[1:] != out.shape[1:]:
            raise ValueError(
                f"{paths[start]} and the images after it decode to {images.shape[1:]}, the "
                f"first ones to {out.shape[1:]}: pass image_size and color_mode to make "
                "them alike."
            )
        out[start : start + len(images)] = images
    out.flush()
    del out
    return np.load(path, mmap_mode="r")


def load_image_folder(
    root: str | os.PathLike,
    *,
    split: str | None = None,
    classes: str | Sequence[str] | None = None,
    image_size: int | tuple[int, int] | None = None,
    color_mode: str | None = None,
    n_jobs: int | None = None,
) -> Bunch:
    """Load a folder of images sorted into one sub-folder per class.

    The layout is ``root/<split>/<class>/<image>``, or ``root/<class>/<image>``
    with ``split=None``. Images are files with the extensions
    :data:`IMAGE_EXTENSIONS` (any case); hidden files and other files are
    skipped. Classes are the sub-folder names sorted alphabetically (as in
    torchvision's ``ImageFolder``) and files are sorted by name within each
    class.

    Parameters
    ----------
    root : str or path-like
        The top folder.
    split : str or None, default=None
        Sub-folder of ``root`` to read, e.g. ``"train"`` or ``"test"``.
    classes : str, list of str or None, default=None
        Read only these classes; ``target_names`` still lists them in
        alphabetical order, whatever the order given. None reads all.
    image_size : int, (height, width) or None, default=None
        Resize every image to this size (bilinear). With None, all images
        must have the same size.
    color_mode : {None, "rgb", "grayscale"}, default=None
        None keeps the files' own mode, which must be the same for all
        files: grayscale (Pillow modes ``L``, ``1``, ``I;16``...) or color
        (``RGB``, ``RGBA``, palette...). ``"rgb"`` or ``"grayscale"``
        converts every image.
    n_jobs : int or None, default=None
        Read the files in parallel with this many joblib workers (processes);
        None means 1 unless in a :func:`joblib.parallel_config` context, -1
        all CPUs. Worth it for tens of thousands of files.

    Returns
    -------
    data : sklearn.utils.Bunch
        images : ndarray of shape (n, H, W) or (n, H, W, 3), uint8
            The images, grayscale or RGB.
        target : ndarray of shape (n,), int64
            Class of each image, an index into ``target_names``.
        target_names : list of str
            The class names, sorted.
        filenames : ndarray of shape (n,), str
            Path of each image file.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> from skvqad.datasets import load_image_folder
    >>> with tempfile.TemporaryDirectory() as root:
    ...     for name in ["train/cat/0.png", "train/cat/1.png", "train/dog/0.png"]:
    ...         Path(root, name).parent.mkdir(parents=True, exist_ok=True)
    ...         Image.new("L", (6, 4)).save(Path(root, name))  # 6 wide, 4 high
    ...     train = load_image_folder(root, split="train")
    >>> train.images.shape, train.images.dtype
    ((3, 4, 6), dtype('uint8'))
    >>> train.target, train.target_names
    (array([0, 0, 1]), ['cat', 'dog'])
    """
    size = _check_image_size(image_size)
    _check_color_mode(color_mode)
    root = _require_dir(Path(root), "The image folder")
    base = root
    if split is not None:
        base = root / split
        if not base.is_dir():
            raise FileNotFoundError(
                f"There is no split {split!r} in {root} ({base} is not a folder); "
                f"sub-folders found: {_names(_subfolders(root))}."
            )
    class_dirs = _subfolders(base)
    if not class_dirs:
        loose = _image_files(base)
        hint = (
            f" It holds {len(loose)} image files directly: put them in a sub-folder per class."
            if loose
            else ""
        )
        raise ValueError(
            f"{base} has no class sub-folders: expected {base}/<class>/<image>.{hint}"
        )
    available = [d.name for d in class_dirs]
    if classes is not None:
        wanted = [classes] if isinstance(classes, str) else list(classes)
        unknown = [c for c in wanted if c not in available]
        if unknown:
            raise ValueError(
                f"Unknown classes {unknown} in {base}; available classes: {available}."
            )
        if not wanted:
            raise ValueError(f"classes is empty; available classes: {available}.")
        class_dirs = [d for d in class_dirs if d.name in set(wanted)]
    paths, target = [], []
    for index, class_dir in enumerate(class_dirs):
        files = _image_files(class_dir)
        if not files:
            raise ValueError(
                f"The class folder {class_dir} holds no images (files ending with "
                f"{', '.join(IMAGE_EXTENSIONS)}). Add images, remove the folder, or leave it "
                "out with classes=[...]."
            )
        paths.extend(files)
        target.extend([index] * len(files))
    images, _ = _load_images(paths, size, color_mode, n_jobs)
    return _bunch(
        images=images,
        target=np.asarray(target, dtype=np.int64),
        target_names=[d.name for d in class_dirs],
        filenames=_filenames(paths),
    )


# -------------------------------------------------------------- MVTec AD
def load_mvtec_ad(
    root: str | os.PathLike,
    category: str,
    *,
    image_size: int | tuple[int, int] | None = 256,
    color_mode: str | None = None,
    n_jobs: int | None = None,
) -> Bunch:
    """Load one category of MVTec AD (or any folder with its layout).

    The layout is ``root/<category>/train/good/*.png`` (normal training
    images), ``root/<category>/test/<defect>/*.png`` (test images, ``good``
    for the normal ones) and
    ``root/<category>/ground_truth/<defect>/<name>_mask.png`` (the mask of
    ``test/<defect>/<name>.png``). Any category name works. Test images are
    ordered by defect folder (alphabetically, ``good`` included), then by
    file name.

    Parameters
    ----------
    root : str or path-like
        The folder holding the category folders.
    category : str
        The category, e.g. ``"bottle"`` or ``"screw"``.
    image_size : int, (height, width) or None, default=256
        Resize images (bilinear) and masks (nearest neighbour) to this size.
        With None, all images must have the same size.
    color_mode : {None, "rgb", "grayscale"}, default=None
        None keeps the files' mode: the grayscale categories (grid, screw,
        zipper) give ``(n, H, W)`` images, the others ``(n, H, W, 3)``.
        ``"rgb"`` or ``"grayscale"`` converts.
    n_jobs : int or None, default=None
        Read the files in parallel with this many joblib workers (processes);
        None means 1 unless in a :func:`joblib.parallel_config` context, -1
        all CPUs. Worth it for tens of thousands of files.

    Returns
    -------
    data : sklearn.utils.Bunch
        X_train : ndarray of shape (n_train, H, W) or (n_train, H, W, 3), uint8
            The normal training images.
        X_test : ndarray of shape (n_test, H, W) or (n_test, H, W, 3), uint8
            The test images.
        anomalous : ndarray of shape (n_test,), bool
            True for the defective test images (any folder but ``good``).
            Mind the sign: the detector labels normal images ``y == 1``.
        masks : ndarray of shape (n_test, H, W), bool
            True on defective pixels (mask value > 127); all False for the
            good images.
        defect_types : ndarray of shape (n_test,), str
            The defect folder of each test image (``"good"`` for normal).
        filenames_test : ndarray of shape (n_test,), str
            Path of each test image.

    Raises
    ------
    FileNotFoundError
        A folder of the layout is missing, or a defective image has no mask.
    ValueError
        A mask has no image, or a mask's size differs from its image's.

    Examples
    --------
    A category with one training image, one good and one defective test
    image, and the mask of the defect:

    >>> import tempfile
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> from skvqad.datasets import load_mvtec_ad
    >>> files = {"train/good/000.png": 0, "test/good/000.png": 0,
    ...          "test/crack/000.png": 0, "ground_truth/crack/000_mask.png": 255}
    >>> with tempfile.TemporaryDirectory() as root:
    ...     for name, value in files.items():
    ...         path = Path(root, "bottle", name)
    ...         path.parent.mkdir(parents=True, exist_ok=True)
    ...         Image.new("L", (8, 8), value).save(path)
    ...     data = load_mvtec_ad(root, "bottle", image_size=4)
    >>> data.X_train.shape, data.X_test.shape
    ((1, 4, 4), (2, 4, 4))
    >>> data.defect_types, data.anomalous
    (array(['crack', 'good'], dtype='<U5'), array([ True, False]))
    >>> data.masks.sum(axis=(1, 2))
    array([16,  0])
    """
    size = _check_image_size(image_size)
    _check_color_mode(color_mode)
    root = _require_dir(Path(root), "The MVTec AD folder")
    category_dir = root / category
    if not category_dir.is_dir():
        raise FileNotFoundError(
            f"There is no category {category!r} in {root}; categories found: "
            f"{_names(_subfolders(root))}."
        )
    train_dir = _require_dir(category_dir / "train" / "good", "The training folder")
    test_dir = _require_dir(category_dir / "test", "The test folder")
    gt_dir = category_dir / "ground_truth"

    train_paths = _image_files(train_dir)
    if not train_paths:
        raise ValueError(f"The training folder {train_dir} holds no images.")
    test_paths, mask_paths, defects = [], [], []
    for defect_dir in _subfolders(test_dir):
        files = _image_files(defect_dir)
        defect = defect_dir.name
        for path in files:
            mask = None
            if defect != "good":
                mask = gt_dir / defect / f"{path.stem}_mask.png"
                if not mask.is_file():
                    raise FileNotFoundError(
                        f"The defective test image {path} has no mask: expected {mask}. Add "
                        "the mask, or move the image out of the test folder."
                    )
            test_paths.append(path)
            mask_paths.append(mask)
            defects.append(defect)
    if not test_paths:
        raise ValueError(f"The test folder {test_dir} holds no images in its sub-folders.")
    if gt_dir.is_dir():
        expected = {m for m in mask_paths if m is not None}
        for mask_folder in _subfolders(gt_dir):
            if mask_folder.name == "good":
                continue
            for mask in _image_files(mask_folder):
                if mask not in expected:
                    image = test_dir / mask_folder.name / (mask.stem.removesuffix("_mask") + ".png")
                    raise ValueError(
                        f"The mask {mask} has no test image (expected {image}). Add the "
                        "image, or remove the mask."
                    )

    all_paths = train_paths + test_paths
    images, sizes = _load_images(all_paths, size, color_mode, n_jobs)
    X_train, X_test = images[: len(train_paths)], images[len(train_paths) :]
    masks, _ = _load_masks(test_paths, sizes[len(train_paths) :], mask_paths, _output_size(images))
    defect_types = np.array(defects, dtype=str)
    return _bunch(
        X_train=X_train,
        X_test=X_test,
        anomalous=defect_types != "good",
        masks=masks,
        defect_types=defect_types,
        filenames_test=_filenames(test_paths),
    )


# ---------------------------------------------------------------- UCSD Ped
_UCSD_SUBSETS = {"ped1": "UCSDped1", "ped2": "UCSDped2"}
_GT_FRAME = re.compile(r"gt_frame\s*\{\s*(\d+)\s*\}\s*=\s*\[([^\]]*)\]")
_RANGE = re.compile(r"(\d+)\s*:\s*(\d+)|(\d+)")


def _parse_ucsd_ranges(path: Path) -> dict[int, list[tuple[int, int]]]:
    """``{sequence number: [(first, last), ...]}`` (1-based, inclusive) from a UCSDpedN.m file."""
    text = path.read_text(errors="replace")
    text = "\n".join(line.split("%", 1)[0] for line in text.splitlines())  # MATLAB comments
    ranges: dict[int, list[tuple[int, int]]] = {}
    for number, body in _GT_FRAME.findall(text):
        spans = []
        for first, last, single in _RANGE.findall(body):
            spans.append((int(first), int(last)) if first else (int(single), int(single)))
        ranges[int(number)] = spans
    return ranges


def _ucsd_sequences(folder: Path) -> list[Path]:
    return [d for d in _subfolders(folder) if not d.name.lower().endswith("_gt")]


def _sequence_number(sequence: Path, position: int) -> int:
    match = re.search(r"(\d+)$", sequence.name)
    return int(match.group(1)) if match else position + 1


def _frame_number(path: Path) -> int | None:
    """The frame number of ``001.tif``, ``frame001.bmp``, ``001_mask.png``...: the last digits."""
    match = re.search(r"(\d+)\D*$", path.stem)
    return int(match.group(1)) if match else None


def _match_masks(frames: list[Path], gt: Path, sequence: Path) -> list[Path]:
    """The mask of each frame in the folder ``gt``, matched by frame number.

    Copies in circulation name masks ``NNN.bmp`` or ``frameNNN.bmp`` and
    re-encode frames and masks in any of ``IMAGE_EXTENSIONS``; only the
    number counts. Two masks of one number, a frame without a mask and a mask
    without a frame are errors.
    """
    masks_by_number: dict[int, Path] = {}
    for mask in _image_files(gt):
        number = _frame_number(mask)
        if number is None:
            raise ValueError(f"The mask {mask} has no frame number in its name.")
        if number in masks_by_number:
            raise ValueError(
                f"The masks {masks_by_number[number]} and {mask} both have frame number "
                f"{number}: keep one."
            )
        masks_by_number[number] = mask
    numbers = [_frame_number(frame) for frame in frames]
    matched = []
    for frame, number in zip(frames, numbers, strict=True):
        if number not in masks_by_number:
            raise FileNotFoundError(
                f"The frame {frame} has no mask in {gt} (expected a mask numbered {number}, "
                f"such as {frame.stem}.bmp or frame{frame.stem}.bmp; {len(frames)} frames, "
                f"{len(masks_by_number)} masks)."
            )
        matched.append(masks_by_number[number])
    orphans = sorted(set(masks_by_number) - set(numbers))
    if orphans:
        raise ValueError(
            f"The mask {masks_by_number[orphans[0]]} has no frame in {sequence} "
            f"({len(frames)} frames, {len(masks_by_number)} masks)."
        )
    return matched


def _ucsd_frames(sequence: Path) -> list[Path]:
    frames = _image_files(sequence)
    if not frames:
        raise ValueError(f"The sequence folder {sequence} holds no frames.")
    return frames


def load_ucsd_ped(
    root: str | os.PathLike,
    subset: str = "ped1",
    *,
    image_size: int | tuple[int, int] | None = 128,
    n_jobs: int | None = None,
) -> Bunch:
    """Load the UCSD Anomaly Dataset (pedestrian walkways, Ped1 or Ped2).

    The layout is that of ``UCSD_Anomaly_Dataset.tar.gz``:
    ``root/UCSDped1/Train/TrainNNN/NNN.tif`` (normal frames),
    ``root/UCSDped1/Test/TestNNN/NNN.tif`` (test frames) and, for the test
    sequences that have them, pixel masks ``root/UCSDped1/Test/TestNNN_gt/NNN.bmp``
    (``UCSDped2`` for Ped2). ``root`` may also be the
    ``UCSD_Anomaly_Dataset.v1p2`` folder's parent or the ``UCSDpedN``
    folder itself. Copies in circulation are read too: frames and masks in
    any of ``IMAGE_EXTENSIONS`` (``.tif`` re-encoded as ``.jpg`` or
    ``.png``), and masks named ``frameNNN.bmp`` rather than ``NNN.bmp``
    (some Ped2 copies' ``Test006_gt``, ...): masks are matched to frames by
    frame number, the last digits of the file name. Hidden files (``._*``) and non-image files
    (``Thumbs.db``) are skipped; ``*_gt`` folders are read as masks only.

    A test frame is anomalous, in a sequence with a ``_gt`` folder, iff its
    mask has a pixel > 127 (at full resolution); in the other sequences,
    iff the frame-level ground truth file ``UCSDped1.m`` (``UCSDped2.m``),
    in the subset folder or in its ``Test`` folder, lists it: lines like
    ``TestDataset.gt_frame{1} = [60:152];`` give 1-based inclusive frame
    ranges of sequence ``Test001``, several ranges separated by commas.
    Frames are counted in name order.

    Parameters
    ----------
    root : str or path-like
        The folder holding ``UCSDped1`` and/or ``UCSDped2``.
    subset : {"ped1", "ped2"}, default="ped1"
        Which scene.
    image_size : int, (height, width) or None, default=128
        Resize frames (bilinear) and masks (nearest neighbour) to this size;
        an int gives square frames (the 238x158 frames are stretched).
        With None, frames keep their size.
    n_jobs : int or None, default=None
        Read the files in parallel with this many joblib workers (processes);
        None means 1 unless in a :func:`joblib.parallel_config` context, -1
        all CPUs. Worth it for tens of thousands of files.

    Returns
    -------
    data : sklearn.utils.Bunch
        X_train : ndarray of shape (n_train, H, W), uint8
            The normal training frames, grayscale, sequence after sequence.
        X_test : ndarray of shape (n_test, H, W), uint8
            The test frames.
        anomalous : ndarray of shape (n_test,), bool
            True for the frames with an anomaly (the detector labels normal
            images ``y == 1``: mind the sign).
        masks : ndarray of shape (n_test, H, W), bool
            Pixel masks, True on anomalous pixels; all False where
            ``has_mask`` is False.
        has_mask : ndarray of shape (n_test,), bool
            Whether the frame's sequence has pixel masks.
        sequence_test : ndarray of shape (n_test,), str
            The sequence folder of each test frame, e.g. ``"Test001"``.
        filenames_test : ndarray of shape (n_test,), str
            Path of each test frame.

    Raises
    ------
    FileNotFoundError
        The subset folder, its ``Train`` or ``Test`` folder, or a frame's
        mask in a ``_gt`` folder is missing.
    ValueError
        A test sequence has neither masks nor frame ranges, a mask has no
        frame, two masks have one frame number, or a mask's size differs
        from its frame's.

    Examples
    --------
    One training frame and a test sequence of two frames whose second is
    labelled anomalous by ``UCSDped1.m``:

    >>> import tempfile
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> from skvqad.datasets import load_ucsd_ped
    >>> with tempfile.TemporaryDirectory() as root:
    ...     ped1 = Path(root, "UCSDped1")
    ...     for name in ["Train/Train001/001.tif", "Test/Test001/001.tif", "Test/Test001/002.tif"]:
    ...         (ped1 / name).parent.mkdir(parents=True, exist_ok=True)
    ...         Image.new("L", (12, 8)).save(ped1 / name)
    ...     _ = (ped1 / "UCSDped1.m").write_text("TestDataset.gt_frame{1} = [2:2];")
    ...     data = load_ucsd_ped(root, image_size=(4, 6))
    >>> data.X_train.shape, data.X_test.shape
    ((1, 4, 6), (2, 4, 6))
    >>> data.anomalous, data.has_mask
    (array([False,  True]), array([False, False]))
    """
    if not isinstance(subset, str) or subset.lower() not in _UCSD_SUBSETS:
        raise ValueError(f"subset must be 'ped1' or 'ped2'; got {subset!r}.")
    size = _check_image_size(image_size)
    name = _UCSD_SUBSETS[subset.lower()]
    root = _require_dir(Path(root), "The UCSD folder")
    candidates = [root / name, root / "UCSD_Anomaly_Dataset.v1p2" / name]
    if root.name == name:
        candidates.insert(0, root)
    subset_dir = next((c for c in candidates if (c / "Train").is_dir() or (c / "Test").is_dir()), None)
    if subset_dir is None:
        raise FileNotFoundError(
            f"No {name} data in {root}: expected {root / name / 'Train'} and "
            f"{root / name / 'Test'} (from UCSD_Anomaly_Dataset.tar.gz)."
        )
    train_dir = _require_dir(subset_dir / "Train", "The training folder")
    test_dir = _require_dir(subset_dir / "Test", "The test folder")

    train_paths = [f for seq in _ucsd_sequences(train_dir) for f in _ucsd_frames(seq)]
    if not train_paths:
        raise ValueError(f"The training folder {train_dir} holds no sequence folders.")

    m_file = next((f for f in (subset_dir / f"{name}.m", test_dir / f"{name}.m") if f.is_file()), None)
    ranges = _parse_ucsd_ranges(m_file) if m_file is not None else {}

    test_paths, mask_paths, anomalous, sequence_names = [], [], [], []
    sequences = _ucsd_sequences(test_dir)
    if not sequences:
        raise ValueError(f"The test folder {test_dir} holds no sequence folders.")
    for position, sequence in enumerate(sequences):
        frames = _ucsd_frames(sequence)
        gt = test_dir / f"{sequence.name}_gt"
        if gt.is_dir():
            mask_paths.extend(_match_masks(frames, gt, sequence))
            anomalous.extend([None] * len(frames))  # from the masks, below
        else:
            number = _sequence_number(sequence, position)
            if number not in ranges:
                where = f"{m_file} has no gt_frame{{{number}}} entry" if m_file else (
                    f"there is no {name}.m file in {subset_dir} or {test_dir}"
                )
                raise ValueError(
                    f"The test sequence {sequence} has no labels: no mask folder {gt}, and "
                    f"{where}. Add the {name}.m file of the dataset or the masks."
                )
            labels = np.zeros(len(frames), dtype=bool)
            for first, last in ranges[number]:
                if first < 1 or last < first:
                    raise ValueError(
                        f"{m_file} gives the invalid frame range {first}:{last} for {sequence}."
                    )
                if last > len(frames):
                    warnings.warn(
                        f"{m_file} gives the frame range {first}:{last} for {sequence}, which "
                        f"has {len(frames)} frames; the range was cut to the frames there are.",
                        UserWarning,
                        stacklevel=2,
                    )
                labels[first - 1 : last] = True
            mask_paths.extend([None] * len(frames))
            anomalous.extend(labels.tolist())
        test_paths.extend(frames)
        sequence_names.extend([sequence.name] * len(frames))

    all_paths = train_paths + test_paths
    images, sizes = _load_images(all_paths, size, "grayscale", n_jobs)
    n_train = len(train_paths)
    masks, any_defect = _load_masks(test_paths, sizes[n_train:], mask_paths, _output_size(images))
    has_mask = np.array([m is not None for m in mask_paths], dtype=bool)
    labels = np.array([a if a is not None else False for a in anomalous], dtype=bool)
    labels[has_mask] = any_defect[has_mask]
    return _bunch(
        X_train=images[:n_train],
        X_test=images[n_train:],
        anomalous=labels,
        masks=masks,
        has_mask=has_mask,
        sequence_test=np.array(sequence_names, dtype=str),
        filenames_test=_filenames(test_paths),
    )


# ------------------------------------------------------ folders with masks
def _defect_type(folder: Path) -> str:
    """The folder's name, or its parent's when it is named ``Imgs`` (Magnetic Tile Defect layout)."""
    folder = Path(os.path.abspath(folder))
    return folder.parent.name if folder.name.lower() == "imgs" else folder.name


def load_folder_with_masks(
    normal_dirs: str | os.PathLike | Sequence[str | os.PathLike] | None,
    anomalous_dirs: str | os.PathLike | Sequence[str | os.PathLike] | None,
    *,
    image_size: int | tuple[int, int] | None = 128,
    mask_suffix: str = ".png",
    mask_dir: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    mask_threshold: int = 127,
    color_mode: str | None = None,
    n_jobs: int | None = None,
) -> Bunch:
    """Load normal images, and defective images with their pixel masks.

    The mask of an image ``<folder>/<stem>.<ext>`` is
    ``<folder>/<stem><mask_suffix>`` beside it, or
    ``<mask_dir>/<stem><mask_suffix>`` with ``mask_dir``. This is the layout
    of the Magnetic Tile Defect set: ``MT_Blowhole/Imgs/exp1_num_4.jpg``
    with its mask ``exp1_num_4.png``.

    Which files are images: without ``mask_dir``, the image files (see
    :data:`IMAGE_EXTENSIONS`) whose name does *not* end with ``mask_suffix``
    (with the default ``".png"``, the ``.jpg`` files beside ``.png`` masks;
    with ``"_mask.png"``, ``a.png`` beside ``a_mask.png``). With
    ``mask_dir``, every image file in the folders. Hidden files are skipped.

    Normal images need no mask (one beside them is ignored) and get all-False
    masks. Every defective image needs its mask, and a mask beside defective
    images needs its image.

    Parameters
    ----------
    normal_dirs : path, list of paths or None
        Folders of normal images (None or [] for none).
    anomalous_dirs : path, list of paths or None
        Folders of defective images (None or [] for none).
    image_size : int, (height, width) or None, default=128
        Resize images (bilinear) and masks (nearest neighbour) to this size.
        With None, all images must have the same size.
    mask_suffix : str, default=".png"
        What replaces an image's extension in its mask's name.
    mask_dir : path, list of paths or None, default=None
        Folder of the masks, or one folder per entry of ``anomalous_dirs``.
        None: masks lie beside their images.
    mask_threshold : int, default=127
        A pixel is defective where its mask value (0-255, converted to
        grayscale) is above this; masks with soft edges are common.
    color_mode : {None, "rgb", "grayscale"}, default=None
        None keeps the files' mode (all must be grayscale or all color);
        ``"rgb"`` or ``"grayscale"`` converts.
    n_jobs : int or None, default=None
        Read the files in parallel with this many joblib workers (processes);
        None means 1 unless in a :func:`joblib.parallel_config` context, -1
        all CPUs. Worth it for tens of thousands of files.

    Returns
    -------
    data : sklearn.utils.Bunch
        images : ndarray of shape (n, H, W) or (n, H, W, 3), uint8
            Normal images first, then the defective ones, folder by folder
            in the order given, files sorted by name.
        masks : ndarray of shape (n, H, W), bool
            True on defective pixels.
        anomalous : ndarray of shape (n,), bool
            True for the images from ``anomalous_dirs`` (the detector labels
            normal images ``y == 1``: mind the sign).
        defect_types : ndarray of shape (n,), str
            ``"good"`` for normal images; else the folder's name, or its
            parent's when the folder is named ``Imgs`` (``"MT_Blowhole"``).
        filenames : ndarray of shape (n,), str
            Path of each image.

    Examples
    --------
    A normal image, and a defective one with its mask ``b.png`` beside it:

    >>> import tempfile
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> from skvqad.datasets import load_folder_with_masks
    >>> with tempfile.TemporaryDirectory() as root:
    ...     good, bad = Path(root, "good"), Path(root, "bad")
    ...     good.mkdir()
    ...     bad.mkdir()
    ...     Image.new("L", (8, 8)).save(good / "a.jpg")
    ...     Image.new("L", (8, 8)).save(bad / "b.jpg")
    ...     Image.new("L", (8, 8), 255).save(bad / "b.png")
    ...     data = load_folder_with_masks(good, bad, image_size=None)
    >>> data.images.shape, data.anomalous, data.defect_types
    ((2, 8, 8), array([False,  True]), array(['good', 'bad'], dtype='<U4'))
    >>> data.masks.sum(axis=(1, 2))
    array([ 0, 64])

    The Magnetic Tile Defect set:

    >>> mtd = load_folder_with_masks(  # doctest: +SKIP
    ...     "mtd/MT_Free/Imgs",
    ...     [f"mtd/MT_{d}/Imgs" for d in ["Blowhole", "Break", "Crack", "Fray", "Uneven"]],
    ... )
    """
    size = _check_image_size(image_size)
    _check_color_mode(color_mode)
    if not isinstance(mask_suffix, str) or not mask_suffix:
        raise ValueError(f"mask_suffix must be a non-empty string such as '.png'; got {mask_suffix!r}.")
    if (
        not isinstance(mask_threshold, Integral)
        or isinstance(mask_threshold, bool)
        or not 0 <= mask_threshold < 255
    ):
        raise ValueError(f"mask_threshold must be an int in [0, 254]; got {mask_threshold!r}.")
    normal = _as_path_list(normal_dirs, "normal_dirs")
    defective = _as_path_list(anomalous_dirs, "anomalous_dirs")
    if not normal and not defective:
        raise ValueError("normal_dirs and anomalous_dirs are both empty: give at least one folder.")
    mask_dirs = _as_path_list(mask_dir, "mask_dir")
    if mask_dir is not None:
        if len(mask_dirs) == 1:
            mask_dirs = mask_dirs * len(defective)
        elif len(mask_dirs) != len(defective):
            raise ValueError(
                f"mask_dir has {len(mask_dirs)} folders but anomalous_dirs has "
                f"{len(defective)}: give one mask folder, or one per anomalous folder."
            )
        for folder in mask_dirs:
            _require_dir(folder, "The mask folder")

    def images_in(folder: Path) -> list[Path]:
        _require_dir(folder, "The image folder")
        files = _image_files(folder)
        if mask_dir is None:
            files = [f for f in files if not _ends_with(f, mask_suffix)]
        if not files:
            why = (
                f" (files ending with mask_suffix={mask_suffix!r} are masks, not images: "
                "pass mask_dir, or a mask_suffix such as '_mask.png')"
                if mask_dir is None
                else ""
            )
            raise ValueError(f"The folder {folder} holds no images{why}.")
        return files

    paths, mask_paths, defect_types = [], [], []
    for folder in normal:
        files = images_in(folder)
        paths.extend(files)
        mask_paths.extend([None] * len(files))
        defect_types.extend(["good"] * len(files))
    for i, folder in enumerate(defective):
        files = images_in(folder)
        where = mask_dirs[i] if mask_dir is not None else folder
        masks_here = []
        for path in files:
            mask = where / (path.stem + mask_suffix)
            if not mask.is_file():
                raise FileNotFoundError(
                    f"The defective image {path} has no mask: expected {mask}. Add the mask, "
                    "move the image out of the folder, or set mask_suffix / mask_dir."
                )
            masks_here.append(mask)
        if mask_dir is None:
            stems = {p.stem for p in files}
            for mask in _image_files(folder):
                if _ends_with(mask, mask_suffix) and mask.name[: -len(mask_suffix)] not in stems:
                    raise ValueError(
                        f"The mask {mask} has no image beside it in {folder}. Add the image, "
                        "or remove the mask."
                    )
        paths.extend(files)
        mask_paths.extend(masks_here)
        defect_types.extend([_defect_type(folder)] * len(files))

    images, sizes = _load_images(paths, size, color_mode, n_jobs)
    masks, _ = _load_masks(paths, sizes, mask_paths, _output_size(images), int(mask_threshold))
    return _bunch(
        images=images,
        masks=masks,
        anomalous=np.array([m is not None for m in mask_paths], dtype=bool),
        defect_types=np.array(defect_types, dtype=str),
        filenames=_filenames(paths),
    )

"""Reading images and masks for the loaders: files, colour modes, sizes (private).

Pillow decodes the files (imported on first use: an optional dependency);
resizing is :func:`skvqad._resize.resize_images`, the one implementation that
:class:`~skvqad.preprocessing.ImageResizer` uses too.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from numbers import Integral
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._docstrings import fill_doc
from .._resize import resize_images

if TYPE_CHECKING:
    from sklearn.utils import Bunch


#: File extensions read as images (compared case-insensitively).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

#: Pillow modes counted as grayscale by ``color_mode=None``.
_GRAYSCALE_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})

_COLOR_MODES = (None, "rgb", "grayscale")

#: Docstring pieces shared by the loaders, filled in by ``_fill_doc``: a
#: parameter's line, then its description.
_DOC_PIECES = {
    "n_jobs": [
        "n_jobs : int or None, default=None",
        "Read the files in parallel with this many joblib workers (processes);",
        "None means 1 unless in a :func:`joblib.parallel_config` context, -1",
        "all CPUs. Worth it for tens of thousands of files.",
    ],
}


_fill_doc = fill_doc(_DOC_PIECES)


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
    pixels = np.asarray(image, dtype=np.uint8)
    if size is not None and original != size:
        pixels = resize_images(pixels.reshape(1, *original, -1), size)[0].reshape(
            size + pixels.shape[2:])
    return pixels, kind, original


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
        resized = resize_images(np.asarray(image)[None, ..., None], size, nearest=True)[0, ..., 0]
        return resized > threshold, original, bool(full.any())
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

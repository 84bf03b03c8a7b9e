"""Image folders: ``root/<split>/<class>/`` trees, folders with masks, and ``.npy`` memmaps."""

from __future__ import annotations

import os
from collections.abc import Sequence
from numbers import Integral
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sklearn.utils import Bunch

from ._io import (
    IMAGE_EXTENSIONS,
    _as_path_list,
    _bunch,
    _check_color_mode,
    _check_image_size,
    _ends_with,
    _filenames,
    _fill_doc,
    _image_files,
    _load_images,
    _load_masks,
    _names,
    _output_size,
    _require_dir,
    _subfolders,
)


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


@_fill_doc
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
    {n_jobs}

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

# ------------------------------------------------------ folders with masks
def _defect_type(folder: Path) -> str:
    """The folder's name, or its parent's when it is named ``Imgs`` (Magnetic Tile Defect layout)."""
    folder = Path(os.path.abspath(folder))
    return folder.parent.name if folder.name.lower() == "imgs" else folder.name


@_fill_doc
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
    {n_jobs}

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

"""MVTec AD: one category, official split, pixel masks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sklearn.utils import Bunch

from ._io import (
    _bunch,
    _check_color_mode,
    _check_image_size,
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


@_fill_doc
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
    {n_jobs}

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

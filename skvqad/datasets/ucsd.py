"""UCSD Anomaly Dataset (Ped1, Ped2): frames, frame labels and pixel masks."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sklearn.utils import Bunch

from ._io import (
    _bunch,
    _check_image_size,
    _filenames,
    _fill_doc,
    _image_files,
    _load_images,
    _load_masks,
    _output_size,
    _require_dir,
    _subfolders,
)

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


@_fill_doc
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
    {n_jobs}

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

"""Resizing images: the one implementation, for the loaders and ``ImageResizer`` (private).

:func:`torch.nn.functional.interpolate`, bilinear with ``antialias=True`` (a
box-like low-pass when shrinking, Pillow's ``BILINEAR`` behaviour) for
images and nearest neighbour at pixel centres (torch's ``"nearest-exact"``,
Pillow's ``NEAREST``; by NumPy indexing, so values are copied exactly) for
masks. torch rather than Pillow because torch is a dependency and Pillow an
optional extra, because it resizes float images and whole batches, and so
that a folder read by :mod:`skvqad.datasets` at ``image_size`` equals the same
files read at full size and passed through
:class:`~skvqad.preprocessing.ImageResizer`. torch is imported on first use.
"""

from __future__ import annotations

import numpy as np

__all__ = ["resize_images", "restore_dtype"]


def restore_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float results back to ``dtype``: integers are rounded and clipped to range."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    if dtype == np.bool_:
        return values >= 0.5
    return values.astype(dtype, copy=False)


def resize_images(images: np.ndarray, size: tuple[int, int], *, nearest: bool = False) -> np.ndarray:
    """``(n, H, W, C)`` images resized to ``size = (h, w)``, in their own dtype.

    Bilinear and antialiased (computed in float32, float64 for float64
    input; integers rounded back), or nearest neighbour with
    ``nearest=True`` (values copied exactly, for masks and labels; NumPy
    only). The input is not modified; a read-only array (a memory map) is
    fine.
    """
    size = (int(size[0]), int(size[1]))
    if images.shape[1:3] == size:
        return images.copy()
    if nearest:
        # Pixel centres, as torch's "nearest-exact" and Pillow's NEAREST pick
        # them, by indexing: values are copied exactly, whatever the dtype.
        # floor((i + 1/2) * n / out) in integers, exactly.
        rows, cols = (
            (2 * np.arange(out, dtype=np.intp) + 1) * n // (2 * out)
            for out, n in zip(size, images.shape[1:3], strict=True)
        )
        return np.ascontiguousarray(images[:, rows][:, :, cols])
    import torch
    from torch.nn import functional as F

    # torch.tensor copies: the input may be read-only.
    dtype = torch.float64 if images.dtype == np.float64 else torch.float32
    batch = torch.tensor(images.transpose(0, 3, 1, 2), dtype=dtype)
    out = F.interpolate(batch, size=size, mode="bilinear", antialias=True, align_corners=False)
    return np.ascontiguousarray(restore_dtype(out.numpy().transpose(0, 2, 3, 1), images.dtype))

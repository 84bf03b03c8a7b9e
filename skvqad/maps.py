"""Anomaly maps of Section II of the paper, computed in torch on any device.

* SM (eq. 5): per-pixel SSIM between an image and its reconstruction, with a
  Gaussian window; the anomaly map is ``1 - SSIM``.
* AM (eq. 6): squared distance between each encoder output and its codebook
  vector, on the latent grid (optionally relative to the encoder output's
  squared norm, not the paper's).
* SSIM+AM (Section II-C): AM upsampled to the image size, grey-dilated with a
  flat square structuring element, multiplied with ``1 - SSIM``.
* The code prior (not in the paper): ``-log p(k | p)``, how rarely the
  training images chose the code ``k`` chosen at latent position ``p``
  (:func:`code_log_prior`, :func:`code_prior_map`), upsampled and dilated
  like the AM.

All functions take and return batched tensors and never leave the device of
their input. Higher map values mean more anomalous.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch
from torch.nn import functional as F

from ._docstrings import SCORING_PARAM_DOCS, fill_doc

__all__ = [
    "MAP_PARAMS",
    "SCORES",
    "check_map_setting",
    "CHANNEL_REDUCTIONS",
    "ALIGNMENTS",
    "gaussian_window",
    "ssim",
    "alignment_map",
    "bank_alignment_map",
    "grey_dilation",
    "code_log_prior",
    "code_prior_map",
    "leave_one_out_prior_map",
    "upsample_latent",
    "anomaly_map",
    "anomaly_maps",
]

#: The anomaly maps that :func:`anomaly_map` can compute.
SCORES = ("ssim+am", "ssim", "am", "prior")
#: How :func:`anomaly_map` combines per-channel ``1 - SSIM`` maps.
CHANNEL_REDUCTIONS = ("mean", "max")
#: How the detector's AM measures each encoder output's distance: to its
#: codebook vector, squared (the paper's) or relative to ``||z_e||^2``
#: (:func:`alignment_map`), or to the nearest of a bank of training encoder
#: outputs (:func:`bank_alignment_map`).
ALIGNMENTS = ("squared", "relative", "bank")
#: The scoring parameters that shape a map, by the names and with the defaults of
#: :class:`~skvqad.VQVAEAnomalyDetector`'s parameters: the keyword arguments of
#: :func:`anomaly_map` and the keys of a setting of :func:`anomaly_maps`.
MAP_PARAMS = {
    "score_map": "ssim+am",
    "alignment": "squared",
    "ssim_window": 11,
    "ssim_sigma": 1.5,
    "ssim_constants": None,
    "channel_reduction": "mean",
    "dilation_radius": 2,
    "ssim_dilation_radius": 0,
    "prior_smoothing": 0.5,
    "prior_radius": 0,
}


def _is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value) -> bool:
    """A non-negative int (not a bool)."""
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= 0


def _check_window(size, sigma, size_name: str, sigma_name: str) -> None:
    if not (_is_count(size) and size % 2 == 1):
        raise ValueError(f"{size_name} must be a positive odd int, got {size!r}.")
    if not (_is_number(sigma) and sigma > 0):
        raise ValueError(f"{sigma_name} must be a positive finite number, got {sigma!r}.")


def _check_constants(constants, name: str) -> tuple[float, float]:
    """``(c1, c2)`` as floats; zero constants divide by zero on flat patches (NaN maps)."""
    try:  # any sequence of two numbers: a tuple, a list, a NumPy array, a tensor
        values = [c.item() if hasattr(c, "item") else c for c in constants]
    except TypeError:  # not iterable
        values = []
    if isinstance(constants, str) or len(values) != 2 or not all(
            _is_number(c) and c > 0 for c in values):
        raise ValueError(f"{name} must be (c1, c2), two positive finite numbers, "
                         f"got {constants!r}.")
    return float(values[0]), float(values[1])


def check_map_setting(setting: dict) -> dict:
    """One map setting completed with the defaults of ``MAP_PARAMS``, every value checked.

    The one place where the maps' parameters are validated: :func:`anomaly_maps`
    calls it for each setting, and :class:`~skvqad.VQVAEAnomalyDetector` for its
    own parameters.

    Parameters
    ----------
    setting : dict
        Some of the keys of ``MAP_PARAMS``.

    Returns
    -------
    dict
        Every key of ``MAP_PARAMS``; ``ssim_constants`` as a tuple of floats or None.

    Raises
    ------
    ValueError
        Naming the first key that is unknown or whose value is not allowed.

    Examples
    --------
    >>> from skvqad.maps import check_map_setting
    >>> check_map_setting({"score_map": "am"})["dilation_radius"]
    2
    >>> check_map_setting({"ssim_window": 4})
    Traceback (most recent call last):
    ...
    ValueError: ssim_window must be a positive odd int, got 4.
    """
    unknown = set(setting) - set(MAP_PARAMS)
    if unknown:
        raise ValueError(f"Unknown anomaly map setting(s) {sorted(unknown)}; "
                         f"known: {sorted(MAP_PARAMS)}.")
    s = {**MAP_PARAMS, **setting}
    for name, allowed in (("score_map", SCORES), ("alignment", ALIGNMENTS),
                          ("channel_reduction", CHANNEL_REDUCTIONS)):
        if not (isinstance(s[name], str) and s[name] in allowed):
            raise ValueError(f"{name} must be one of {allowed}, got {s[name]!r}.")
    _check_window(s["ssim_window"], s["ssim_sigma"], "ssim_window", "ssim_sigma")
    if s["ssim_constants"] is not None:
        s["ssim_constants"] = _check_constants(s["ssim_constants"], "ssim_constants")
    for name in ("dilation_radius", "ssim_dilation_radius", "prior_radius"):
        if not _is_count(s[name]):
            raise ValueError(f"{name} must be a non-negative int, got {s[name]!r}.")
    if not (_is_number(s["prior_smoothing"]) and s["prior_smoothing"] > 0):
        raise ValueError(f"prior_smoothing must be a positive finite number, "
                         f"got {s['prior_smoothing']!r}.")
    return s


def gaussian_window(
    size: int, sigma: float = 1.5, *, device=None, dtype=torch.float32
) -> torch.Tensor:
    """Normalised 1-D Gaussian window of odd length ``size``.

    Parameters
    ----------
    size : int
        Length of the window (odd).
    sigma : float, default=1.5
        Standard deviation, in samples.
    device, dtype : torch device and dtype
        Of the returned tensor.

    Returns
    -------
    torch.Tensor of shape (size,)
        Weights that sum to 1, largest at the centre.

    Raises
    ------
    ValueError
        If ``size`` is not a positive odd int (an even window has no centre
        pixel and shifts the map by half a pixel), or ``sigma`` is not a
        positive finite number.

    Examples
    --------
    >>> from skvqad.maps import gaussian_window
    >>> gaussian_window(5).round(decimals=4)
    tensor([0.1201, 0.2339, 0.2921, 0.2339, 0.1201])
    """
    _check_window(size, sigma, "window_size", "sigma")
    radius = (size - 1) / 2
    coords = torch.arange(size, device=device, dtype=dtype) - radius
    window = torch.exp(-0.5 * (coords / sigma) ** 2)
    return window / window.sum()


def _gaussian_filter(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter of every channel of ``x`` (n, C, H, W).

    Borders are extended by replicating the edge pixels (``mode='nearest'`` in
    :func:`scipy.ndimage.gaussian_filter`), so any image size works.
    """
    channels = x.shape[1]
    radius = window.numel() // 2
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    kernel_h = window.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    kernel_w = window.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    x = F.conv2d(x, kernel_h, groups=channels)
    return F.conv2d(x, kernel_w, groups=channels)


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    window_size: int = 11,
    sigma: float = 1.5,
    data_range: float = 1.0,
    constants: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Per-pixel structural similarity (eq. 5) of two batches of images.

    Parameters
    ----------
    x, y : torch.Tensor of shape (n, C, H, W)
        Images with values in ``[0, data_range]``.
    window_size : int, default=11
        Side of the Gaussian window (odd).
    sigma : float, default=1.5
        Standard deviation of the Gaussian window.
    data_range : float, default=1.0
        ``L`` in the constants ``c1 = (0.01 L)^2`` and ``c2 = (0.03 L)^2``.
    constants : tuple of two floats, default=None
        ``(c1, c2)`` given directly, overriding ``data_range``. Larger
        constants make the map less sensitive to differences in flat, dark
        patches and closer to a locally averaged squared error. The paper's
        text states ``c1 = 0.01`` and ``c2 = 0.03`` (unsquared) while citing
        Wang et al. (2004), whose constants the default follows.

    Returns
    -------
    torch.Tensor of shape (n, C, H, W)
        SSIM of the patch around each pixel of each channel, in ``[-1, 1]``.
        Means, variances and the covariance are Gaussian-weighted (population,
        not sample, statistics), as in Wang et al. (2004).

    Raises
    ------
    ValueError
        If ``constants`` is not two positive finite numbers, ``window_size``
        not a positive odd int or ``sigma`` not positive (see
        :func:`gaussian_window`), or ``x`` and ``y`` differ in shape.

    Examples
    --------
    >>> import torch
    >>> from skvqad.maps import ssim
    >>> x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    >>> s = ssim(x, x)
    >>> s.shape, bool(torch.allclose(s, torch.ones_like(s)))
    (torch.Size([2, 3, 8, 8]), True)
    >>> bool(ssim(x, 1 - x).mean() < 0)  # the negative image: anti-correlated
    True
    """
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}.")
    window = gaussian_window(window_size, sigma, device=x.device)
    x = x.float()
    y = y.float()
    if constants is None:
        c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    else:
        c1, c2 = _check_constants(constants, "constants")
    n, c, h, w = x.shape
    chunk = _ssim_chunk(c, h, w, window_size)
    if n <= chunk:
        return _ssim_map(x, y, window, c1, c2)
    return torch.cat([_ssim_map(x[i : i + chunk], y[i : i + chunk], window, c1, c2)
                      for i in range(0, n, chunk)])


#: Bound on the stacked moments that :func:`ssim` filters at once, in values (16 MB).
_SSIM_CHUNK_ELEMENTS = 2**22


def _ssim_chunk(channels: int, height: int, width: int, window_size: int) -> int:
    """How many images :func:`ssim` filters at once. The filter's temporaries are many times
    the images: a few images at a time keep them bounded whatever the batch (one filter call
    per chunk for the five moments)."""
    pad = window_size // 2
    return max(1, _SSIM_CHUNK_ELEMENTS // (5 * channels * (height + 2 * pad) * (width + 2 * pad)))


def _ssim_map(x, y, window, c1, c2) -> torch.Tensor:
    """Eq. 5 at every pixel of float images ``x``, ``y`` (n, C, H, W)."""
    c = x.shape[1]
    stats = _gaussian_filter(torch.cat([x, y, x * x, y * y, x * y], dim=1), window)
    mu_x, mu_y, xx, yy, xy = stats.split(c, dim=1)
    var_x = xx - mu_x * mu_x
    var_y = yy - mu_y * mu_y
    cov = xy - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return num / den


def alignment_map(z_e: torch.Tensor, e: torch.Tensor, *, relative: bool = False) -> torch.Tensor:
    """Alignment map (eq. 6): ``||z_e - e||^2`` at each latent position.

    Parameters
    ----------
    z_e, e : torch.Tensor of shape (n, D, h, w)
        Encoder output and the codebook vector chosen for each position.
    relative : bool, default=False
        Divide by ``||z_e||^2`` at each position (not the paper's): the
        quantisation error relative to the encoder output's scale, which
        grows with the local contrast of the image. Positions where
        ``||z_e||^2 < 1e-12`` are divided by ``1e-12`` instead.

    Returns
    -------
    torch.Tensor of shape (n, h, w)

    Examples
    --------
    >>> import torch
    >>> from skvqad.maps import alignment_map
    >>> z_e = torch.zeros(1, 4, 2, 2)
    >>> e = torch.full((1, 4, 2, 2), 0.5)  # 4 dimensions, each 0.5 away
    >>> alignment_map(z_e, e)
    tensor([[[1., 1.],
             [1., 1.]]])

    Relative to ``||z_e||^2``, the map no longer depends on the scale of
    ``z_e`` and ``e``:

    >>> z_e = torch.ones(1, 4, 1, 1)
    >>> e = torch.full((1, 4, 1, 1), 0.5)
    >>> alignment_map(z_e, e, relative=True), alignment_map(10 * z_e, 10 * e, relative=True)
    (tensor([[[0.2500]]]), tensor([[[0.2500]]]))
    """
    z_e = z_e.float()
    am = (z_e - e.float()).pow(2).sum(dim=1)
    if relative:
        am = am / z_e.pow(2).sum(dim=1).clamp_min(1e-12)
    return am


def bank_alignment_map(
    z_e: torch.Tensor, bank: torch.Tensor, *, max_elements: int = 2**25
) -> torch.Tensor:
    """Squared distance of each encoder output to its nearest vector of ``bank``.

    The codebook summarises the training encoder outputs in M vectors; a
    bank of (a sample of) the training encoder outputs themselves measures
    how far a latent position is from anything seen in training. Exact
    nearest neighbours, computed as ``||z||^2 - 2 z.b + ||b||^2`` in float32
    on the device of ``z_e``, the bank taken in chunks so that no
    intermediate holds more than ``max_elements`` distances.

    Parameters
    ----------
    z_e : torch.Tensor of shape (n, D, h, w)
        Encoder outputs.
    bank : torch.Tensor of shape (k, D)
        The bank, on the device of ``z_e``.
    max_elements : int, default=2**25
        Bound on the size of the distance block computed at once (128 MB).

    Returns
    -------
    torch.Tensor of shape (n, h, w), float32, non-negative

    Examples
    --------
    >>> import torch
    >>> from skvqad.maps import bank_alignment_map
    >>> bank = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    >>> z_e = torch.tensor([[1.0, 0.0], [3.0, 3.0]]).T.reshape(1, 2, 1, 2)
    >>> bank_alignment_map(z_e, bank)
    tensor([[[1., 1.]]])
    """
    n, d, h, w = z_e.shape
    flat = z_e.float().permute(0, 2, 3, 1).reshape(-1, d)
    bank = bank.float()
    z2 = (flat * flat).sum(1, keepdim=True)
    best = torch.full((len(flat),), float("inf"), device=flat.device)
    index = torch.zeros(len(flat), dtype=torch.long, device=flat.device)
    chunk = max(1, max_elements // max(1, len(flat)))
    for start in range(0, len(bank), chunk):
        b = bank[start : start + chunk]
        dist, arg = (z2 - 2.0 * flat @ b.t() + (b * b).sum(1)).min(1)
        closer = dist < best
        best = torch.where(closer, dist, best)
        index = torch.where(closer, arg + start, index)
    # The expansion above finds the neighbour; the distance itself is taken
    # directly, free of its cancellation error when z_e is near a bank vector.
    return (flat - bank[index]).pow(2).sum(1).view(n, h, w)


def grey_dilation(maps: torch.Tensor, radius: int) -> torch.Tensor:
    """Grey dilation with a flat ``(2 radius + 1)`` square structuring element.

    Equal to :func:`scipy.ndimage.grey_dilation` with
    ``footprint=np.ones((2 r + 1, 2 r + 1))`` on each map. ``radius=0``
    returns the maps unchanged.

    Parameters
    ----------
    maps : torch.Tensor of shape (n, H, W)
    radius : int

    Returns
    -------
    torch.Tensor of shape (n, H, W)

    Examples
    --------
    >>> import torch
    >>> from skvqad.maps import grey_dilation
    >>> maps = torch.zeros(1, 5, 5)
    >>> maps[0, 2, 2] = 1.0
    >>> grey_dilation(maps, 1)
    tensor([[[0., 0., 0., 0., 0.],
             [0., 1., 1., 1., 0.],
             [0., 1., 1., 1., 0.],
             [0., 1., 1., 1., 0.],
             [0., 0., 0., 0., 0.]]])
    """
    if not _is_count(radius):
        raise ValueError(f"radius must be a non-negative int, got {radius!r}.")
    if radius == 0:
        return maps
    size = 2 * radius + 1
    # max_pool2d pads with -inf, so border pixels see only real neighbours.
    return F.max_pool2d(maps.unsqueeze(1), size, stride=1, padding=radius).squeeze(1)


def _box_sum(values: torch.Tensor, radius: int) -> torch.Tensor:
    """Sum of ``values`` (h, w, ...) over the ``(2 radius + 1)`` square around each position.

    Positions outside the grid count as zero. Exact for integer tensors
    (summed-area table in int64).
    """
    if radius == 0:
        return values
    h, w = values.shape[:2]
    table = torch.zeros((h + 1, w + 1, *values.shape[2:]), dtype=torch.int64, device=values.device)
    table[1:, 1:] = values.long().cumsum(0).cumsum(1)
    rows = torch.arange(h, device=values.device)
    cols = torch.arange(w, device=values.device)
    top, bottom = (rows - radius).clamp(0, h), (rows + radius + 1).clamp(0, h)
    left, right = (cols - radius).clamp(0, w), (cols + radius + 1).clamp(0, w)
    return (table[bottom][:, right] - table[top][:, right]
            - table[bottom][:, left] + table[top][:, left])


def _check_prior_params(smoothing, radius) -> None:
    if not (_is_number(smoothing) and smoothing > 0):
        raise ValueError(f"smoothing must be a positive finite number, got {smoothing!r}.")
    if not _is_count(radius):
        raise ValueError(f"radius must be a non-negative int, got {radius!r}.")


def code_log_prior(
    counts: torch.Tensor, *, smoothing: float = 0.5, radius: int = 0
) -> torch.Tensor:
    """The code prior: ``log p(k | p)`` at each latent position from code counts.

    ``p(k | p) = (c[p, k] + a) / (n[p] + M a)``, where ``c[p, k]`` is how
    many times the training images chose code ``k`` at the positions within
    ``radius`` of ``p`` (a square of side ``2 radius + 1``, clipped at the
    grid's border), ``n[p] = sum_k c[p, k]`` and ``a`` is ``smoothing``
    (additive smoothing: a code never seen there gets a finite probability).
    ``radius=0`` is one table per position; a radius as large as the grid is
    one table for every position (position-free).

    Parameters
    ----------
    counts : torch.Tensor of shape (h, w, M), integer
        How many training images chose each code at each latent position.
    smoothing : float, default=0.5
        The pseudo-count ``a`` added to every code (0.5: Jeffreys' prior).
    radius : int, default=0
        Positions pooled around each one.

    Returns
    -------
    torch.Tensor of shape (h, w, M), float32
        Log-probabilities; each position's sum to 1 over the M codes.

    Raises
    ------
    ValueError
        If ``smoothing`` is not positive or ``radius`` is negative.

    Examples
    --------
    >>> import torch
    >>> from skvqad.maps import code_log_prior
    >>> counts = torch.tensor([[[3, 1, 0, 0]]])  # one position, M = 4, 4 images
    >>> code_log_prior(counts, smoothing=0.5).exp()
    tensor([[[0.5833, 0.2500, 0.0833, 0.0833]]])
    """
    _check_prior_params(smoothing, radius)
    pooled = _box_sum(counts, radius).double()
    totals = pooled.sum(-1, keepdim=True)
    m = counts.shape[-1]
    return ((pooled + smoothing).log() - (totals + m * smoothing).log()).float()


def code_prior_map(indices: torch.Tensor, log_prior: torch.Tensor) -> torch.Tensor:
    """The prior's negative log-likelihood of each chosen code, on the latent grid.

    Parameters
    ----------
    indices : torch.Tensor of shape (n, h, w), integer
        The code chosen at each latent position (``VQVAEOutput.indices``).
    log_prior : torch.Tensor of shape (h, w, M)
        :func:`code_log_prior`.

    Returns
    -------
    torch.Tensor of shape (n, h, w), float32, non-negative
        ``-log p(indices[i, p] | p)``: high where the code is rare there.

    Examples
    --------
    >>> import torch
    >>> from skvqad.maps import code_log_prior, code_prior_map
    >>> counts = torch.tensor([[[3, 1, 0, 0]]])
    >>> code_prior_map(torch.tensor([[[0]], [[2]]]), code_log_prior(counts))
    tensor([[[0.5390]],
    <BLANKLINE>
            [[2.4849]]])
    """
    n, h, w = indices.shape
    flat = log_prior.reshape(h * w, -1)
    positions = torch.arange(h * w, device=indices.device).expand(n, -1)
    return -flat[positions, indices.reshape(n, -1)].view(n, h, w)


def leave_one_out_prior_map(
    indices: torch.Tensor, counts: torch.Tensor, *, smoothing: float = 0.5, radius: int = 0
) -> torch.Tensor:
    """:func:`code_prior_map` of images whose own codes are in ``counts``, each left out.

    For a training image, ``counts`` holds its own codes, which make them
    look more usual than they would to a new normal image. This removes the
    image's own contribution (its code at each pooled position) from the
    counts before the probability is taken: the exact leave-one-out prior,
    without recounting. The detector scores its training images this way,
    for the threshold and the calibration it sets in ``fit``.

    Parameters
    ----------
    indices : torch.Tensor of shape (n, h, w), integer
        Codes of images counted in ``counts``.
    counts : torch.Tensor of shape (h, w, M), integer
        The code counts (see :func:`code_log_prior`).
    smoothing, radius
        As for :func:`code_log_prior`.

    Returns
    -------
    torch.Tensor of shape (n, h, w), float32

    Examples
    --------
    Four images chose code 0 at the one position, one chose code 1: left
    out, the latter's code has never been seen.

    >>> import torch
    >>> from skvqad.maps import leave_one_out_prior_map
    >>> indices = torch.tensor([0, 0, 0, 0, 1]).view(5, 1, 1)
    >>> counts = torch.tensor([[[4, 1]]])
    >>> leave_one_out_prior_map(indices, counts, smoothing=0.5).flatten()
    tensor([0.3567, 0.3567, 0.3567, 0.3567, 2.3026])
    """
    _check_prior_params(smoothing, radius)
    n, h, w = indices.shape
    m = counts.shape[-1]
    pooled = _box_sum(counts, radius)
    neighbours = _box_sum(torch.ones((h, w), dtype=torch.int64, device=counts.device), radius)
    n_images = counts[0, 0].sum()
    positions = torch.arange(h * w, device=indices.device).expand(n, -1)
    chosen = pooled.reshape(h * w, m)[positions, indices.reshape(n, -1)].view(n, h, w)
    # The image's own codes among the pooled positions equal to its code at p.
    own = torch.zeros_like(indices, dtype=torch.int64)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            rows = slice(max(0, -dy), min(h, h - dy))
            cols = slice(max(0, -dx), min(w, w - dx))
            rows_q = slice(max(0, dy), min(h, h + dy))
            cols_q = slice(max(0, dx), min(w, w + dx))
            own[:, rows, cols] += indices[:, rows, cols] == indices[:, rows_q, cols_q]
    total = (n_images - 1) * neighbours
    log_p = (chosen - own).double().add(smoothing).log() - (total.double() + m * smoothing).log()
    return (-log_p).float()


def upsample_latent(
    latent: torch.Tensor, factor: int, height: int, width: int, dilation_radius: int = 0
) -> torch.Tensor:
    """A latent map (n, h, w) at the image size: nearest upsampling, crop, grey dilation.

    How the AM and the prior map are brought to the pixels (Section II-C):
    each latent value covers its ``factor x factor`` block; the result is
    cropped to ``(height, width)`` (the latent grid covers the padded image)
    and dilated by :func:`grey_dilation`.

    Parameters
    ----------
    latent : torch.Tensor of shape (n, h, w)
    factor : int
        ``2 ** n_downsampling``.
    height, width : int
        The image size.
    dilation_radius : int, default=0

    Returns
    -------
    torch.Tensor of shape (n, height, width), float32

    Examples
    --------
    >>> import torch
    >>> from skvqad.maps import upsample_latent
    >>> upsample_latent(torch.tensor([[[1.0, 2.0]]]), 2, 2, 3)
    tensor([[[1., 1., 2.],
             [1., 1., 2.]]])
    """
    up = latent.float().repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)
    return grey_dilation(up[..., :height, :width], dilation_radius)


@fill_doc(SCORING_PARAM_DOCS)
def anomaly_map(
    x: torch.Tensor,
    x_hat: torch.Tensor | None,
    am: torch.Tensor | None,
    *,
    factor: int,
    score_map: str = "ssim+am",
    ssim_window: int = 11,
    ssim_sigma: float = 1.5,
    channel_reduction: str = "mean",
    dilation_radius: int = 2,
    ssim_dilation_radius: int = 0,
    ssim_constants: tuple[float, float] | None = None,
    prior: torch.Tensor | None = None,
) -> torch.Tensor:
    """Pixel anomaly map of each image (higher = more anomalous).

    The parameters that shape the map have the names and defaults of
    :class:`~skvqad.VQVAEAnomalyDetector`'s (``MAP_PARAMS``).

    Parameters
    ----------
    x : torch.Tensor of shape (n, C, H, W)
        Images in ``[0, 1]``.
    x_hat : torch.Tensor of shape (n, C, H, W) or None
        Their reconstructions; unused (may be None) when ``score_map`` needs
        no SSIM (``"am"``, ``"prior"``).
    am : torch.Tensor of shape (n, h, w) or None
        Alignment maps on the latent grid (:func:`alignment_map`); unused
        (may be None) when ``score_map`` needs no AM.
    factor : int
        Ratio of the (padded) image size to the latent grid,
        ``2 ** n_downsampling``. The upsampled AM is cropped to ``(H, W)``.
    score_map : {"ssim+am", "ssim", "am", "prior"}, default="ssim+am"
        ``"ssim"``: ``1 - SSIM``; ``"am"``: the upsampled, dilated AM;
        ``"ssim+am"``: their product; ``"prior"``: the upsampled, dilated
        ``prior`` map.
    {ssim_window}
    {ssim_sigma}
    {channel_reduction}
    {dilation_radius}
    {ssim_dilation_radius}
    {ssim_constants}
    prior : torch.Tensor of shape (n, h, w) or None, default=None
        The code prior's map on the latent grid (:func:`code_prior_map`),
        for the ``"prior"`` scores.

    Returns
    -------
    torch.Tensor of shape (n, H, W), float32

    Examples
    --------
    >>> import torch
    >>> from skvqad.maps import anomaly_map
    >>> x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    >>> am = torch.ones(2, 2, 2)  # alignment maps on the 2 x 2 latent grid
    >>> anomaly_map(x, x, am, factor=4).shape
    torch.Size([2, 8, 8])

    A perfect reconstruction has an SSIM of 1, hence a zero SSIM+AM map:

    >>> bool(anomaly_map(x, x, am, factor=4).abs().max() < 1e-6)
    True
    >>> anomaly_map(x, None, am, factor=4, score_map="am").unique()
    tensor([1.])
    """
    setting = dict(score_map=score_map, ssim_window=ssim_window, ssim_sigma=ssim_sigma,
                   channel_reduction=channel_reduction, dilation_radius=dilation_radius,
                   ssim_dilation_radius=ssim_dilation_radius, ssim_constants=ssim_constants)
    return anomaly_maps(x, x_hat, am, [setting], factor=factor, prior=prior)[0]


def anomaly_maps(
    x: torch.Tensor,
    x_hat,
    am,
    settings: list[dict],
    *,
    factor: int,
    z_e: torch.Tensor | None = None,
    e: torch.Tensor | None = None,
    bank: torch.Tensor | None = None,
    prior=None,
    indices: torch.Tensor | None = None,
    code_counts: torch.Tensor | None = None,
    prior_tables: dict | None = None,
) -> list[torch.Tensor]:
    """The anomaly maps of several settings, sharing the steps they have in common.

    Each SSIM map is computed once per distinct SSIM setting (window, sigma,
    constants, channel reduction, SSIM dilation), each upsampled alignment
    map once per distinct alignment and dilation radius, each prior map once
    per distinct smoothing, radius and dilation, whatever the number of
    settings that use them. This is how :class:`~skvqad.VQVAEAnomalyDetector`
    scores one network output under many settings.

    Parameters
    ----------
    x : torch.Tensor of shape (n, C, H, W)
        Images in ``[0, 1]``.
    x_hat : torch.Tensor of shape (n, C, H, W), callable or None
        Their reconstructions, or a function of no argument that returns
        them, called once and only if a setting needs the SSIM (None if none
        does).
    am : torch.Tensor of shape (n, h, w), dict, or None
        Alignment maps on the latent grid: one tensor, or a dict from an
        alignment name (``ALIGNMENTS``) to its map, looked up by each
        setting's ``"alignment"`` key. None: computed here from ``z_e``,
        ``e`` and ``bank``, for the alignments the settings use (or not at
        all if none needs the AM).
    settings : list of dict
        Keys of ``MAP_PARAMS``, the detector's scoring parameters that shape
        a map: those of :func:`anomaly_map` plus ``alignment``,
        ``prior_smoothing`` and ``prior_radius`` (of :func:`code_log_prior`);
        missing keys take the detector's defaults. Each is checked by
        :func:`check_map_setting`.
    factor : int
        Ratio of the (padded) image size to the latent grid.
    z_e, e : torch.Tensor of shape (n, D, h, w) or None, default=None
        Encoder outputs and their codebook vectors, for ``am=None``:
        :func:`alignment_map` (``"squared"``, ``"relative"``).
    bank : torch.Tensor of shape (k, D) or None, default=None
        Training encoder outputs, for ``am=None`` and ``"bank"``:
        :func:`bank_alignment_map`.
    prior : torch.Tensor of shape (n, h, w), callable or None, default=None
        The prior map on the latent grid for every setting, or a function of
        ``(smoothing, radius)`` that returns it. None: computed here with
        :func:`code_prior_map` from ``indices`` and ``code_counts``.
    indices : torch.Tensor of shape (n, h, w) or None, default=None
        The chosen codes, for ``prior=None``.
    code_counts : torch.Tensor of shape (h, w, M) or None, default=None
        The training code counts, for ``prior=None``.
    prior_tables : dict or None, default=None
        A cache of :func:`code_log_prior` tables by ``(smoothing, radius)``,
        filled here: pass the same dict for every batch of a data set.

    Returns
    -------
    list of torch.Tensor of shape (n, H, W), float32
        One map per setting, in order.

    Examples
    --------
    >>> import torch
    >>> from skvqad.maps import anomaly_map, anomaly_maps
    >>> x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    >>> x_hat = (x + 0.1).clamp(0, 1)
    >>> am = torch.rand(2, 2, 2, generator=torch.Generator().manual_seed(1))
    >>> sm, both = anomaly_maps(x, x_hat, am, [{"score_map": "ssim"}, {"dilation_radius": 1}],
    ...                         factor=4)
    >>> torch.equal(both, anomaly_map(x, x_hat, am, factor=4, dilation_radius=1))
    True
    """
    height, width = x.shape[-2:]
    ssim_parts, latent_parts, latents, result = {}, {}, {}, []
    if prior_tables is None:
        prior_tables = {}
    for setting in settings:
        s = check_map_setting(setting)
        maps = None
        if s["score_map"] in ("ssim", "ssim+am"):
            constants = s["ssim_constants"]
            key = (
                s["ssim_window"],
                s["ssim_sigma"],
                constants,
                s["channel_reduction"],
                s["ssim_dilation_radius"],
            )
            if key not in ssim_parts:
                if callable(x_hat):
                    x_hat = x_hat()
                sm = 1.0 - ssim(
                    x, x_hat, window_size=key[0], sigma=key[1], constants=constants
                )
                sm = sm.mean(dim=1) if key[3] == "mean" else sm.amax(dim=1)
                ssim_parts[key] = grey_dilation(sm, key[4])
            maps = ssim_parts[key]
        if s["score_map"] in ("am", "ssim+am"):
            key = ("am", s["alignment"], s["dilation_radius"])
            if key not in latent_parts:
                if isinstance(am, dict):
                    if key[1] not in am:
                        raise ValueError(f"No alignment map {key[1]!r} was given.")
                    latent = am[key[1]]
                elif am is not None:
                    latent = am
                else:
                    if key[1] not in latents:
                        latents[key[1]] = _latent_alignment(key[1], z_e, e, bank)
                    latent = latents[key[1]]
                latent_parts[key] = upsample_latent(latent, factor, height, width, key[2])
            maps = latent_parts[key] if maps is None else maps * latent_parts[key]
        if s["score_map"] == "prior":
            key = ("prior", s["prior_smoothing"], s["prior_radius"], s["dilation_radius"])
            if key not in latent_parts:
                latent = _latent_prior(prior, key[1], key[2], indices, code_counts, prior_tables)
                latent_parts[key] = upsample_latent(latent, factor, height, width, key[3])
            maps = latent_parts[key] if maps is None else maps * latent_parts[key]
        result.append(maps)
    return result


def _latent_prior(prior, smoothing, radius, indices, code_counts, tables) -> torch.Tensor:
    """The (n, h, w) prior map of ``(smoothing, radius)``, given or computed."""
    if callable(prior):
        return prior(smoothing, radius)
    if prior is not None:
        return prior
    if indices is None or code_counts is None:
        raise ValueError("A prior map needs prior, or indices and code_counts.")
    if (smoothing, radius) not in tables:
        tables[smoothing, radius] = code_log_prior(code_counts, smoothing=smoothing, radius=radius)
    return code_prior_map(indices, tables[smoothing, radius])


def _latent_alignment(alignment: str, z_e, e, bank) -> torch.Tensor:
    """The (n, h, w) alignment map named ``alignment`` (one of ``ALIGNMENTS``)."""
    if alignment not in ALIGNMENTS:
        raise ValueError(f"alignment must be one of {ALIGNMENTS}, got {alignment!r}.")
    if z_e is None:
        raise ValueError("An alignment map needs am, or z_e (and e or bank).")
    if alignment == "bank":
        if bank is None:
            raise ValueError("alignment='bank' needs bank, the training encoder outputs.")
        return bank_alignment_map(z_e, bank)
    if e is None:
        raise ValueError(f"alignment={alignment!r} needs e, the codebook vectors of z_e.")
    return alignment_map(z_e, e, relative=alignment == "relative")

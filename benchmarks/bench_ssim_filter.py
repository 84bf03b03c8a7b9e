"""The SSIM map's Gaussian filter: the implementation in ``skvqad.maps`` against alternatives.

:func:`skvqad.maps.ssim` stacks its five moments (x, y, x², y², xy) along the
channels and filters them all at once after a replicate pad, with two grouped
convolutions, one per axis: two launches whatever the number of statistics.
Issue #27 asks whether fewer launches make the maps faster on a GPU (in the
first GPU session ``anomaly_map`` ran at 0.34 of the forward pass's
throughput, host copies included). Measured here, on the same moments, in the
same run, by default on one of the chunks that ``ssim`` filters at a time
(3 images at 256 px RGB, 158 at 32 px):

* ``grouped, separable (skvqad)``: the baseline, ``skvqad.maps._gaussian_filter``
  (22 taps a pixel, two launches);
* ``grouped, one 2-D kernel``: one grouped convolution with the 11 x 11 outer
  product of the window (121 taps a pixel, one launch);
* ``moments as a batch, separable``: the channels folded into the batch, two
  single-channel convolutions (no groups);
* ``banded matrix products``: each axis as a product with a banded matrix
  that holds the window and the replicated border.

Each alternative is checked against the baseline (largest absolute
difference) before it is timed; the banded matrices are built before the
timing. On a GPU, TF32 is switched off for convolutions and matrix products
alike, so that every variant computes in float32. For scale, the whole
``ssim`` call on the same images is timed too.

    python benchmarks/bench_ssim_filter.py --device cpu --out benchmarks/results/bench_ssim_filter_cpu.json
    python benchmarks/bench_ssim_filter.py --device cuda
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from skvqad.maps import _gaussian_filter, _ssim_chunk, gaussian_window, ssim
from skvqad.utils import environment

from _common import add_device_argument, command_line, sync, versions_text, write_results


def grouped_2d(x, window):
    """One grouped convolution with the outer-product kernel: one launch."""
    c, r = x.shape[1], window.numel() // 2
    x = F.pad(x, (r, r, r, r), mode="replicate")
    return F.conv2d(x, torch.outer(window, window).expand(c, 1, -1, -1), groups=c)


def batched_separable(x, window):
    """The moments folded into the batch: two single-channel convolutions."""
    n, c, h, w = x.shape
    r = window.numel() // 2
    x = F.pad(x.reshape(n * c, 1, h, w), (r, r, r, r), mode="replicate")
    x = F.conv2d(x, window.view(1, 1, -1, 1))
    return F.conv2d(x, window.view(1, 1, 1, -1)).reshape(n, c, h, w)


def band(size, window):
    """(size, size) matrix B with (B @ v)[i] = sum_k window[k] v[clip(i + k - r)]."""
    r = window.numel() // 2
    rows = torch.arange(size, device=window.device).view(-1, 1)
    cols = (rows + torch.arange(-r, r + 1, device=window.device).view(1, -1)).clamp(0, size - 1)
    b = torch.zeros(size, size, device=window.device, dtype=window.dtype)
    return b.index_put_((rows.expand_as(cols), cols), window.expand_as(cols), accumulate=True)


def banded_matmul(x, bands):
    """Each axis as a product with a banded matrix (border replication folded in)."""
    bh, bw = bands
    return bh @ x @ bw.T


def timed(variants, device, repeats):
    """Median seconds per call of each variant, the variants interleaved in each
    round, in a rotated order, so that a slow spell of a shared machine hits them alike."""
    times = {name: [] for name in variants}
    names = list(variants)
    for i in range(repeats):
        for name in names[i % len(names):] + names[:i % len(names)]:
            fn = variants[name]
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def measure(args, device):
    """Each variant's median time and largest difference to skvqad's filter, and the
    median time of the whole ``ssim`` call, on the same random images."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.n_images, args.channels, args.size, args.size, generator=gen).to(device)
    y = torch.rand(x.shape, generator=gen).to(device)
    moments = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # as skvqad.maps._ssim_map stacks them
    window = gaussian_window(args.window_size, 1.5, device=device)
    bands = (band(args.size, window), band(args.size, window))  # built before the timing
    variants = {
        "grouped, separable (skvqad)": lambda: _gaussian_filter(moments, window),
        "grouped, one 2-D kernel": lambda: grouped_2d(moments, window),
        "moments as a batch, separable": lambda: batched_separable(moments, window),
        "banded matrix products": lambda: banded_matmul(moments, bands),
    }
    with torch.inference_mode():
        reference = _gaussian_filter(moments, window)
        diffs = {name: float((fn() - reference).abs().max()) for name, fn in variants.items()}
        for _ in range(2):  # more warm-up (kernel selection and caches on a GPU)
            for fn in variants.values():
                fn()
        seconds = timed({**variants, "ssim": lambda: ssim(x, y)}, device, args.repeats)
    rows = {name: {"ms": 1e3 * seconds[name], "max_abs_diff": diffs[name]} for name in variants}
    return rows, 1e3 * seconds["ssim"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_device_argument(p)
    p.add_argument("--n-images", type=int, default=None,
                   help="images per filter call; default: the chunk that skvqad.maps.ssim filters")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--window-size", type=int, default=11)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--out")
    args = p.parse_args(argv)

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else "cpu" if args.device == "auto" else args.device)
    if args.n_images is None:
        args.n_images = _ssim_chunk(args.channels, args.size, args.size, args.window_size)
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    if device.type == "cuda":  # convolutions in float32, as the matrix products; restored after
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        rows, ssim_ms = measure(args, device)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    base = rows["grouped, separable (skvqad)"]["ms"]
    env = environment(device)
    command = command_line(__file__, argv)
    table = ["| filter | ms per call | ratio to skvqad's | largest difference to skvqad's |",
             "|---|---|---|---|"] + [
        f"| {k} | {v['ms']:.1f} | {v['ms'] / base:.2f} | {v['max_abs_diff']:.1e} |"
        for k, v in rows.items()]
    print("\n".join(table))
    share = f"the whole `ssim` call on the same images: {ssim_ms:.1f} ms, of which skvqad's filter is " \
        f"{base / ssim_ms:.0%}"
    print(share)
    if args.out:
        write_results(args.out, {"command": command, "rows": rows, "ssim_ms": ssim_ms,
                                 "config": vars(args), **env}, [
            f"# The SSIM map's Gaussian filter ({env['device']})", "",
            f"Command: `{command}`  ",
            f"Device: {env['device']}; " + versions_text(env["versions"]) + ".  ",
            f"The five stacked moments of {args.n_images} random {args.size} x {args.size} x "
            f"{args.channels} image pairs ({5 * args.channels} channels), a {args.window_size}-tap "
            f"window, float32, median of {args.repeats} calls after a warm-up, the variants "
            "interleaved in a rotated order; TF32 off on a GPU. A ratio below 1 is faster than "
            "the filter skvqad uses.", "", *table, "", share[0].upper() + share[1:] + "."])
    return rows


if __name__ == "__main__":
    main()

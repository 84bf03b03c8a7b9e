"""Peak memory of fitting and scoring images that stay on disk (a memmap).

Each case runs in a fresh process: warm up (imports and one batch-sized fit,
not counted), then fit and score a tiny network on 51,200 random 32 x 32
uint8 images (52 MB on disk) and report the growth of the process's peak
RSS. The baseline, in the same run, is what a user without the memmap path
does: load the images as a float32 array (210 MB) and fit that.

Each case also runs with glibc's ``MALLOC_MMAP_THRESHOLD_`` fixed at 1 MiB:
glibc raises its mmap threshold to the size of each large block freed, after
which freed batch-sized blocks stay in the heap and count as RSS. Fixing the
threshold returns them at once, which shows how much of the growth is held
data and how much the allocator's retention. Each case runs ``--repeats``
times (median and range: the retention varies from run to run).

    python benchmarks/bench_memmap.py --out benchmarks/results/bench_memmap_cpu
    python benchmarks/bench_memmap.py --n-images 4000 --shape 64 64 3 --batch-size 128 \
        --out benchmarks/results/bench_memmap_64px_cpu
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

from skvqad.utils import environment

from _common import command_line, provenance, write_results

CASE = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from skvqad import VQVAEAnomalyDetector

    X = np.load(sys.argv[1], mmap_mode="r")
    detector = VQVAEAnomalyDetector(
        n_embeddings=8, embedding_dim=4, hidden_channels=4, n_residual_layers=0,
        max_epochs=1, batch_size=int(sys.argv[3]), bank_size=100, random_state=0, device="cpu")
    detector.fit(X[:512]).score_samples(X[:512])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.argv[2] == "float32":
        X = np.asarray(X, dtype=np.float32) / 255
    detector.fit(X).score_samples(X)
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
""")


#: The allocator settings each case runs under (environment variables of its process).
ALLOCATORS = {"default": {}, "fixed mmap threshold": {"MALLOC_MMAP_THRESHOLD_": "1048576"}}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-images", type=int, default=51200)
    p.add_argument("--shape", type=int, nargs="+", default=[32, 32],
                   help="H W or H W C of each image (default: 32 32)")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", help="write <out>.json and <out>.md")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "X.npy"
        X = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8,
                                      shape=(args.n_images, *args.shape))
        rng = np.random.default_rng(0)
        for start in range(0, len(X), 6400):
            X[start:start + 6400] = rng.integers(0, 256, size=X[start:start + 6400].shape,
                                                 dtype=np.uint8)
        X.flush()
        size_mb = X.nbytes / 2**20
        del X
        runs = {}
        for allocator, extra in ALLOCATORS.items():
            for case in ("memmap", "float32"):
                runs[f"{case}, {allocator}"] = [float(subprocess.run(
                    [sys.executable, "-c", CASE, str(path), case, str(args.batch_size)],
                    capture_output=True, text=True, env={**os.environ, **extra},
                    check=True).stdout.split()[-1]) for _ in range(args.repeats)]
    growth = {key: statistics.median(values) for key, values in runs.items()}
    env = environment("cpu")
    command = command_line(__file__, argv)
    result = {"n_images": args.n_images, "shape": args.shape, "batch_size": args.batch_size,
              "uint8_mb": size_mb, "float32_mb": 4 * size_mb,
              "peak_rss_growth_mb": growth, "runs_mb": runs, "allocators": ALLOCATORS,
              "command": command, **env}
    shape = " x ".join(map(str, args.shape))
    lines = [f"Peak RSS growth of fit + score_samples on {args.n_images} random {shape} uint8 "
             f"images ({size_mb:.0f} MB on disk; {4 * size_mb:.0f} MB as float32), tiny network, "
             f"batches of {args.batch_size}, after a warm-up fit; median (range) of "
             f"{args.repeats} runs.", "",
             "| input | glibc default | `MALLOC_MMAP_THRESHOLD_=1048576` |", "|---|---|---|"]
    names = {"memmap": "`np.load(path, mmap_mode='r')` (uint8 memmap, converted batch by batch)",
             "float32": "the same images as an in-memory float32 array (baseline)"}
    for case, name in names.items():
        cells = [f"{growth[f'{case}, {a}']:.0f} ({min(runs[f'{case}, {a}']):.0f}-"
                 f"{max(runs[f'{case}, {a}']):.0f})" for a in ALLOCATORS]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    lines += ["", provenance(command, env)]
    print("\n".join(lines))
    if args.out:
        write_results(args.out, result, lines)


if __name__ == "__main__":
    main()

"""Peak memory of fitting and scoring images that stay on disk (a memmap).

Each case runs in a fresh process: warm up (imports and one batch-sized fit,
not counted), then fit and score a tiny network on 51,200 random 32 x 32
uint8 images (52 MB on disk) and report the growth of the process's peak
RSS. The baseline, in the same run, is what a user without the memmap path
does: load the images as a float32 array (210 MB) and fit that.

    python benchmarks/bench_memmap.py --out benchmarks/results/bench_memmap_cpu
"""

from __future__ import annotations

import argparse
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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-images", type=int, default=51200)
    p.add_argument("--shape", type=int, nargs="+", default=[32, 32],
                   help="H W or H W C of each image (default: 32 32)")
    p.add_argument("--batch-size", type=int, default=512)
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
        growth = {case: float(subprocess.run(
            [sys.executable, "-c", CASE, str(path), case, str(args.batch_size)],
            capture_output=True, text=True,
            check=True).stdout.split()[-1]) for case in ("memmap", "float32")}
    env = environment("cpu")
    command = command_line(__file__, argv)
    result = {"n_images": args.n_images, "shape": args.shape, "batch_size": args.batch_size,
              "uint8_mb": size_mb, "float32_mb": 4 * size_mb,
              "peak_rss_growth_mb": growth, "command": command, **env}
    shape = " x ".join(map(str, args.shape))
    lines = [f"Peak RSS growth of fit + score_samples on {args.n_images} random {shape} uint8 "
             f"images ({size_mb:.0f} MB on disk; {4 * size_mb:.0f} MB as float32), tiny network, "
             f"batches of {args.batch_size}, after a warm-up fit.", "",
             "| input | peak RSS growth (MB) |", "|---|---|",
             f"| `np.load(path, mmap_mode='r')` (uint8 memmap, converted batch by batch) "
             f"| {growth['memmap']:.0f} |",
             f"| the same images as an in-memory float32 array (baseline) | {growth['float32']:.0f} |",
             "", provenance(command, env)]
    print("\n".join(lines))
    if args.out:
        write_results(args.out, result, lines)


if __name__ == "__main__":
    main()

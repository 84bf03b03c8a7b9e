"""Eq. 4 summed over each image's elements, or each term averaged (the default), issue #26.

:class:`skvqad.model.VQVAELoss` averages each term of eq. 4 over its
elements; the paper's eq. 4 sums them over each image, which weighs the
alignment and commitment terms differently against the likelihood. This
trains the digits one-vs-rest protocol of ``examples/digits_one_vs_rest.py``
(the same network and split) with each reduction, the same seeds, and
reports the image AUROC of SSIM, AM and SSIM+AM per digit and their means::

    python benchmarks/studies/loss_reduction.py --out benchmarks/results/loss_reduction_digits_cpu
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from skvqad import VQVAEAnomalyDetector
from skvqad.utils import environment

# _common lives in benchmarks/, beside the speed benchmarks.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import add_device_argument, command_line, provenance, write_results  # noqa: E402

MAPS = ("ssim", "am", "ssim+am")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-epochs", type=int, default=150)
    parser.add_argument("--out", help="<out>.json and <out>.md")
    add_device_argument(parser)
    args = parser.parse_args(argv)
    digits = load_digits()
    X = (digits.images / 16.0).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(
        X, digits.target, test_size=0.5, stratify=digits.target, random_state=0)
    params = dict(n_embeddings=64, embedding_dim=32, hidden_channels=64, n_downsampling=1,
                  ssim_window=3, dilation_radius=1, max_epochs=args.max_epochs, batch_size=32,
                  device=args.device, random_state=0)
    rows = {"mean": [], "sum": []}
    for reduction in ("mean", "sum"):
        for digit in range(10):
            det = VQVAEAnomalyDetector(**params, loss_reduction=reduction).fit(
                X_train[y_train == digit])
            scores = det.score_samples_multi(X_test, {m: {"score_map": m} for m in MAPS})
            rows[reduction].append({m: roc_auc_score(y_test == digit, s) for m, s in scores.items()})
            print(reduction, digit, rows[reduction][-1], flush=True)
    means = {r: {m: float(np.mean([row[m] for row in rows[r]])) for m in MAPS} for r in rows}
    env = environment(det.net_.device)
    command = command_line(__file__, argv)
    lines = ["# Loss reduction on the digits one-vs-rest protocol (mean image AUROC)", "",
             "| reduction | SSIM | AM | SSIM+AM |", "|---|---|---|---|",
             *(f"| {r} | " + " | ".join(f"{means[r][m]:.3f}" for m in MAPS) + " |" for r in rows),
             "", provenance(command, env)]
    print("\n".join(lines))
    if args.out:
        write_results(args.out, {"command": command, "rows": rows, "means": means, **env}, lines)


if __name__ == "__main__":
    main()

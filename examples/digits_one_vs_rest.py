"""One-vs-rest anomaly detection on scikit-learn's digits
=======================================================

The CIFAR-10 protocol of the paper (Section III-D) on data that ships with
scikit-learn: for each digit, a VQ-VAE is trained on the training images of
that digit only, then all test images are scored and the image AUROC is
computed with the digit as normal and the nine others as anomalous.

One network is trained per digit; the paper's three anomaly maps (SSIM, AM
and SSIM+AM) and, beyond the paper, the code prior's (``prior``)
and two fused scores (the highest of the AM's, or SSIM+AM's,
and the prior's scores standardised on the digit's training images) are read
from one pass of the same network
(:meth:`~skvqad.VQVAEAnomalyDetector.score_samples_multi`). Beside them, on
the same split, the pixel baselines a user would try first
(:func:`skvqad.baselines.pixel_baselines`): distance to the 5th nearest
training image, PCA reconstruction error, IsolationForest. Runs in a few
minutes on 2 CPU cores::

    python examples/digits_one_vs_rest.py
"""

import argparse
import json
import os
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from skvqad import VQVAEAnomalyDetector
from skvqad.baselines import pixel_baselines
from skvqad.utils import environment

#: Column -> score_map, all read from the same network.
SCORE_MAPS = {"ssim": "ssim", "am": "am", "ssim+am": "ssim+am", "prior": "prior",
              "z(am,prior)": ("am", "prior"),
              "z(ssim+am,prior)": ("ssim+am", "prior")}
BASELINES = ("knn", "pca", "iforest")
COLUMNS = {"ssim": "VQ-VAE SSIM", "am": "VQ-VAE AM", "ssim+am": "VQ-VAE SSIM+AM",
           "prior": "prior", "z(am,prior)": "z(AM, prior)",
           "z(ssim+am,prior)": "z(SSIM+AM, prior)",
           "knn": "kNN pixels", "pca": "PCA error", "iforest": "IForest"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-epochs", type=int, default=150)
    parser.add_argument("--codebook-restart", action=argparse.BooleanOptionalAction, default=True,
                        help="re-draw unused codes (the default); --no-codebook-restart trains "
                        "as the paper does")
    parser.add_argument("--alignment", choices=["squared", "relative"], default="squared",
                        help="AM distance: the paper's squared one (the default) or relative")
    parser.add_argument("--mixed-precision", choices=["auto", "true", "false"], default="auto",
                        help="bfloat16 autocast (the detector's mixed_precision)")
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--digits", type=int, nargs="+", choices=range(10), default=list(range(10)),
                        metavar="DIGIT", help="the digits to run, each as the normal class "
                        "(default: all ten)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    digits = load_digits()
    X = (digits.images / 16.0).astype(np.float32)  # (1797, 8, 8) in [0, 1]
    X_train, X_test, y_train, y_test = train_test_split(
        X, digits.target, test_size=0.5, stratify=digits.target, random_state=0
    )
    detector = VQVAEAnomalyDetector(
        n_embeddings=64,
        embedding_dim=32,
        hidden_channels=64,
        n_downsampling=1,  # 8x8 images -> 4x4 latent grid
        ssim_window=3,
        dilation_radius=1,
        max_epochs=args.max_epochs,
        batch_size=32,
        lr=1e-3,
        codebook_restart=args.codebook_restart,
        alignment=args.alignment,
        device=args.device,
        mixed_precision={"auto": "auto", "true": True, "false": False}[args.mixed_precision],
        random_state=args.random_state,
    )

    rows, start = [], time.perf_counter()
    for digit in args.digits:
        detector.fit(X_train[y_train == digit])
        normal = (y_test == digit).astype(int)
        scores = detector.score_samples_multi(
            X_test, {k: {"score_map": m} for k, m in SCORE_MAPS.items()})
        for name, model in pixel_baselines(random_state=args.random_state).items():
            scores[name] = model.fit(X_train[y_train == digit]).score_samples(X_test)
        row = {"digit": digit, **{k: roc_auc_score(normal, s) for k, s in scores.items()}}
        rows.append(row)
        print(f"digit {digit}: " + ", ".join(f"{k} {row[k]:.3f}" for k in COLUMNS), flush=True)
    seconds = time.perf_counter() - start

    print("\nImage AUROC, one digit normal vs the nine others (scikit-learn digits, test half)\n")
    print("| digit | " + " | ".join(COLUMNS.values()) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for row in rows:
        print(f"| {row['digit']} | " + " | ".join(f"{row[k]:.3f}" for k in COLUMNS) + " |")
    means = {k: float(np.mean([r[k] for r in rows])) for k in COLUMNS}
    print("| mean | " + " | ".join(f"{means[k]:.3f}" for k in COLUMNS) + " |")
    env = environment(detector.net_.device)
    print(f"\n{seconds:.0f} s on {env['device']}; "
          + ", ".join(f"{k} {v}" for k, v in env["versions"].items()))
    if args.json:
        # Written whole, then renamed: a stopped run never leaves half a file.
        tmp = f"{args.json}.tmp"
        with open(tmp, "w") as f:
            json.dump({"rows": rows, "mean": means, "seconds": seconds, "device": env["device"],
                       "bf16": detector.net_.bf16_enabled,
                       "params": {k: v for k, v in detector.get_params().items()
                                  if isinstance(v, (int, float, str, type(None)))},
                       "versions": env["versions"]}, f, indent=2)
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()

"""One-vs-rest anomaly detection on scikit-learn's digits
=======================================================

The CIFAR-10 protocol of the paper (Section III-D) on data that ships with
scikit-learn: for each digit, a VQ-VAE is trained on the training images of
that digit only, then all test images are scored and the image AUROC is
computed with the digit as normal and the nine others as anomalous.

One network is trained per digit; the three anomaly maps (SSIM, AM and
SSIM+AM) are read from the same network by changing ``score_map``, which
changes no weights. Runs in a few minutes on 2 CPU cores::

    python examples/digits_one_vs_rest.py
"""

import argparse
import json
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from skvqad import VQVAEAnomalyDetector
from skvqad.utils import environment

SCORE_MAPS = ("ssim", "am", "ssim+am")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-epochs", type=int, default=150)
    parser.add_argument("--codebook-restart", action=argparse.BooleanOptionalAction, default=True,
                        help="re-draw unused codes (the default); --no-codebook-restart trains "
                        "as the paper does")
    parser.add_argument("--alignment", choices=["squared", "relative"], default="squared",
                        help="AM distance: the paper's squared one (the default) or relative")
    parser.add_argument("--device", default="auto")
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
        random_state=0,
    )

    rows, start = [], time.perf_counter()
    for digit in range(10):
        detector.fit(X_train[y_train == digit])
        normal = (y_test == digit).astype(int)
        row = {"digit": digit}
        for score_map in SCORE_MAPS:
            scores = detector.set_params(score_map=score_map).score_samples(X_test)
            row[score_map] = roc_auc_score(normal, scores)
        detector.set_params(score_map="ssim+am")
        rows.append(row)
        print(f"digit {digit}: " + ", ".join(f"{k} {row[k]:.3f}" for k in SCORE_MAPS), flush=True)
    seconds = time.perf_counter() - start

    print("\nImage AUROC, one digit normal vs the nine others (scikit-learn digits, test half)\n")
    print("| digit | VQ-VAE SSIM | VQ-VAE AM | VQ-VAE SSIM+AM |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['digit']} | " + " | ".join(f"{row[k]:.3f}" for k in SCORE_MAPS) + " |")
    means = {k: float(np.mean([r[k] for r in rows])) for k in SCORE_MAPS}
    print("| mean | " + " | ".join(f"{means[k]:.3f}" for k in SCORE_MAPS) + " |")
    env = environment(detector.net_.device)
    print(f"\n{seconds:.0f} s on {env['device']}; "
          + ", ".join(f"{k} {v}" for k, v in env["versions"].items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "mean": means, "seconds": seconds, "device": env["device"],
                       "params": {k: v for k, v in detector.get_params().items()
                                  if isinstance(v, (int, float, str, type(None)))},
                       "versions": env["versions"]}, f, indent=2)


if __name__ == "__main__":
    main()

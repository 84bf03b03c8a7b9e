"""Defect segmentation on the Magnetic Tile Defect set
===================================================

Pixel-level anomaly detection on real grayscale photos of magnetic tiles
(Huang et al., 2018/2020), with a fixed, stated split since the set has none:
80 % of ``MT_Free`` (seed 0) for training, the other 20 % and every defect
image (blowhole, break, crack, fray, uneven) for testing. Images are resized
to ``--image-size`` (128 px by default).

Prints, overall and per defect type, the pooled pixel AUROC, AUPRO, the
per-image mean pixel AUROC and the image AUROC of VQ-VAE SSIM and SSIM+AM
(images scored with ``--score-pooling``: the mean of the map, as in the
paper, its maximum or a quantile; ``benchmarks/results/pooling_bank_mtd_cpu.md``
compares them);
saves the results as JSON and figures of the best and worst defect images
(paper Fig. 2 layout: image, anomaly map over the reconstruction,
segmentation at a threshold chosen on held-out normal images).

Run with the folder that holds ``MT_Free``, ``MT_Blowhole``, ...::

    python examples/magnetic_tile.py --root path/to/mtd --out results/mtd

The best configuration of the CPU search, a 2 x 2 latent grid and a coarse
SSIM map, dilated
(``benchmarks/results/mtd_postprocessing_down6_cpu.md``)::

    python examples/magnetic_tile.py --root path/to/mtd --n-downsampling 6 --ssim-window 41 \
        --ssim-sigma 6 --ssim-dilation-radius 4 --out results/mtd_down6

The figures show the better of the two maps (SSIM or SSIM+AM, by pooled
pixel AUROC); ``figure_map`` in the JSON says which.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from skvqad import VQVAEAnomalyDetector
from skvqad.datasets import load_folder_with_masks
from skvqad.metrics import pixel_auroc, pixel_report
from skvqad.plotting import plot_anomaly_maps
from skvqad.thresholds import threshold_from_normal
from skvqad.utils import environment

DEFECTS = ("MT_Blowhole", "MT_Break", "MT_Crack", "MT_Fray", "MT_Uneven")


def n_downsampling(value):
    """``"auto"`` or a positive integer, for ``--n-downsampling``."""
    if value == "auto":
        return value
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f'"auto" or a positive integer, got {value!r}')
    return n


def pooling(value):
    """``"mean"``, ``"max"`` or a float in (0, 1), for ``--score-pooling``."""
    if value in ("mean", "max"):
        return value
    try:
        q = float(value)
    except ValueError:
        q = -1.0
    if not 0 < q < 1:
        raise argparse.ArgumentTypeError(f'"mean", "max" or a number in (0, 1), got {value!r}')
    return q


def split(data, seed=0, train_fraction=0.8):
    """Indices of the training images (normal only) and of the test images."""
    normal = np.flatnonzero(~data.anomalous)
    order = np.random.default_rng(seed).permutation(normal)
    n_train = int(round(train_fraction * len(normal)))
    train = np.sort(order[:n_train])
    test = np.setdiff1d(np.arange(len(data.images)), train)
    return train, test


def main(argv=None):
    parser = argparse.ArgumentParser(description="Magnetic Tile Defect pixel AUROC")
    parser.add_argument("--root", required=True, help="folder holding MT_Free, MT_Blowhole, ...")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--max-epochs", type=int, default=60)
    parser.add_argument("--hidden-channels", type=int, default=128)
    parser.add_argument("--n-embeddings", type=int, default=256)
    parser.add_argument("--n-downsampling", type=n_downsampling, default="auto",
                        help='stride-2 layers of the encoder: "auto" (3 at 128 px) or an integer')
    parser.add_argument("--dilation-radius", type=int, default=4)
    parser.add_argument("--ssim-dilation-radius", type=int, default=0)
    parser.add_argument("--ssim-window", type=int, default=11)
    parser.add_argument("--ssim-sigma", type=float, default=1.5)
    parser.add_argument("--score-pooling", type=pooling, default="mean",
                        help='image score: "mean" (the paper), "max" or a quantile in (0, 1)')
    parser.add_argument("--codebook-restart", action=argparse.BooleanOptionalAction, default=True,
                        help="re-draw unused codes (the default); --no-codebook-restart trains "
                        "as the paper does")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="mtd_results", help="folder for JSON and figures")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    root = Path(args.root)
    data = load_folder_with_masks(
        root / "MT_Free" / "Imgs", [root / d / "Imgs" for d in DEFECTS], image_size=args.image_size
    )
    train, test = split(data)
    X_train, X_test = data.images[train], data.images[test]
    masks, groups = data.masks[test], np.asarray(data.defect_types)[test]
    print(f"{len(train)} normal training images; {len(test)} test images "
          f"({(groups == 'good').sum()} normal) of {args.image_size} px", flush=True)

    detector = VQVAEAnomalyDetector(
        hidden_channels=args.hidden_channels, embedding_dim=64, n_embeddings=args.n_embeddings,
        n_downsampling=args.n_downsampling,
        dilation_radius=args.dilation_radius, ssim_dilation_radius=args.ssim_dilation_radius,
        ssim_window=args.ssim_window,
        ssim_sigma=args.ssim_sigma, score_pooling=args.score_pooling,
        codebook_restart=args.codebook_restart,
        max_epochs=args.max_epochs, batch_size=32, device=args.device, random_state=0,
    )
    start = time.perf_counter()
    detector.fit(X_train)
    fit_seconds = time.perf_counter() - start

    reports, maps = {}, {}
    for score_map in ("ssim", "ssim+am"):
        start = time.perf_counter()
        maps[score_map] = detector.set_params(score_map=score_map).anomaly_map(X_test)
        seconds = time.perf_counter() - start
        # Image AUROC from the detector's own scores, pooled by --score-pooling.
        reports[score_map] = pixel_report(masks, maps[score_map], groups=groups,
                                          scores=-detector.score_samples(X_test))
        reports[score_map]["maps_per_second"] = len(X_test) / seconds

    metrics = {"pixel_auroc": "pixel AUROC", "aupro": "AUPRO",
               "per_image_pixel_auroc": "per-image pixel AUROC", "image_auroc": "image AUROC"}
    columns = [(m, k) for k in metrics for m in ("ssim", "ssim+am")]
    lines = ["| defect type | images | " + " | ".join(f"{metrics[k]} {m.upper()}" for m, k in columns)
             + " |", "|---|---|" + "---|" * len(columns)]
    def fmt(v):
        return "n/a" if v is None else f"{v:.3f}"

    for group in reports["ssim+am"]:
        if group == "maps_per_second":
            continue
        lines.append(f"| {group} | {reports['ssim'][group]['n_images']} | "
                     + " | ".join(fmt(reports[m][group][k]) for m, k in columns) + " |")
    env = environment(detector.net_.device)
    device_name, versions = env["device"], env["versions"]
    footer = (f"Training {fit_seconds:.0f} s, SSIM+AM maps "
              f"{reports['ssim+am']['maps_per_second']:.0f} images/s on {device_name}; "
              f"codes used in the last epoch: {detector.history_[-1, 'codes_used']} of "
              f"{args.n_embeddings}; " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print("\n".join(lines) + "\n\n" + footer)

    # Figures of the better map: threshold from the maps of the held-out normal
    # images (99.5th percentile of their pixels), best and worst defect images
    # by pixel AUROC.
    figure_map = max(maps, key=lambda k: reports[k]["all"]["pixel_auroc"])
    m = maps[figure_map]
    threshold = threshold_from_normal(m[groups == "good"], quantile=0.995)
    defective = np.flatnonzero(masks.reshape(len(masks), -1).any(axis=1))
    per_image = np.array([pixel_auroc(masks[i:i + 1], m[i:i + 1]) for i in defective])
    order = defective[np.argsort(per_image)]
    for name, chosen in (("worst", order[:4]), ("best", order[::-1][:4])):
        fig = plot_anomaly_maps(list(X_test[chosen]), list(m[chosen]),
                                reconstructions=list(detector.reconstruct(X_test[chosen])),
                                masks=list(masks[chosen]), threshold=threshold,
                                titles=[f"{groups[i]}" for i in chosen])
        fig.savefig(out / f"mtd_{name}.png", dpi=80)

    params = {k: v for k, v in detector.get_params().items()
              if isinstance(v, (int, float, str, type(None)))}
    (out / "mtd.json").write_text(json.dumps({
        "command": "python examples/magnetic_tile.py " + " ".join(
            argv if argv is not None else sys.argv[1:]),
        "split": "80% of MT_Free (seed 0) for training; the rest and all defect images for testing",
        "n_train": int(len(train)), "n_test": int(len(test)), "image_size": args.image_size,
        "reports": reports, "figure_map": figure_map, "threshold": threshold,
        "fit_seconds": fit_seconds, "n_downsampling": detector.n_downsampling_,
        "device": device_name, "params": params, "versions": versions,
        "history_codes_used": [int(c) for c in detector.history_[:, "codes_used"]],
    }, indent=2))
    (out / "mtd.md").write_text("\n".join(lines) + f"\n\n{footer}; figures: {figure_map}\n")


if __name__ == "__main__":
    main()

"""MVTec AD: pixel AUROC per category (the paper's Table I)
=========================================================

The protocol of Section III-B of Gangloff et al. (2022): one VQ-VAE per
category, trained on its defect-free training images resized to 256 x 256
(3 downsamplings, a 32 x 32 latent grid, M = 512, D = 256), and the pooled
pixel AUROC of VQ-VAE SSIM and SSIM+AM on the test images, printed next to
Table I, with AUPRO. Figures of the best and worst test images of each
category are saved (paper Fig. 2 layout; threshold: the 99.5th percentile of
the maps of the good test images).

Run with the folder that holds ``bottle/``, ``cable/``, ...::

    python examples/mvtec_ad.py --root path/to/mvtec_ad --categories bottle hazelnut --out results/mvtec
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from skvqad import VQVAEAnomalyDetector
from skvqad.datasets import load_mvtec_ad
from skvqad.metrics import pixel_auroc, pixel_report
from skvqad.plotting import plot_anomaly_maps, threshold_from_normal
from skvqad.utils import environment

#: Table I: AE SSIM, VEVAE, FCDD, VQ-VAE SSIM, VQ-VAE SSIM+AM (pixel AUROC).
PAPER = {
    "carpet": (0.87, 0.78, 0.96, 0.92, 0.94), "grid": (0.94, 0.73, 0.91, 0.99, 0.99),
    "leather": (0.78, 0.95, 0.98, 0.98, 0.98), "tile": (0.59, 0.80, 0.91, 0.70, 0.75),
    "wood": (0.73, 0.77, 0.88, 0.82, 0.84), "bottle": (0.93, 0.87, 0.97, 0.94, 0.95),
    "cable": (0.82, 0.90, 0.90, 0.87, 0.87), "capsule": (0.94, 0.74, 0.93, 0.93, 0.94),
    "hazelnut": (0.97, 0.98, 0.95, 0.98, 0.99), "metal_nut": (0.89, 0.90, 0.94, 0.89, 0.90),
    "pill": (0.91, 0.83, 0.81, 0.86, 0.90), "screw": (0.96, 0.97, 0.86, 0.98, 0.98),
    "toothbrush": (0.92, 0.94, 0.94, 0.96, 0.97), "transistor": (0.90, 0.93, 0.88, 0.77, 0.78),
    "zipper": (0.88, 0.78, 0.92, 0.97, 0.98),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description="MVTec AD pixel AUROC (Table I)")
    parser.add_argument("--root", required=True, help="folder holding the category folders")
    parser.add_argument("--categories", nargs="+", default=sorted(PAPER))
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--max-epochs", type=int, default=100)
    parser.add_argument("--hidden-channels", type=int, default=256)
    parser.add_argument("--embedding-dim", type=int, help="D (default: --hidden-channels)")
    parser.add_argument("--n-embeddings", type=int, default=512)
    parser.add_argument("--n-downsampling", type=int, help="default: the detector's auto (3 at 256 px)")
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--dilation-radius", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="mvtec_results", help="folder for JSON and figures")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    detector = VQVAEAnomalyDetector(
        hidden_channels=args.hidden_channels,
        embedding_dim=args.embedding_dim or args.hidden_channels,
        n_embeddings=args.n_embeddings, n_downsampling=args.n_downsampling or "auto",
        dilation_radius=args.dilation_radius, max_epochs=args.max_epochs,
        batch_size=args.batch_size, device=args.device, random_state=args.random_state,
    )
    rows, results = [], {}
    for category in args.categories:
        data = load_mvtec_ad(args.root, category, image_size=args.image_size)
        groups = np.asarray(data.defect_types)
        start = time.perf_counter()
        detector.set_params(score_map="ssim+am").fit(data.X_train)
        fit_seconds = time.perf_counter() - start
        reports, maps = {}, {}
        for score_map in ("ssim", "ssim+am"):
            start = time.perf_counter()
            maps[score_map] = detector.set_params(score_map=score_map).anomaly_map(data.X_test)
            reports[score_map] = pixel_report(data.masks, maps[score_map], groups=groups)
            reports[score_map]["maps_per_second"] = len(data.X_test) / (time.perf_counter() - start)
        ssim, both = reports["ssim"]["all"], reports["ssim+am"]["all"]
        # Categories outside Table I (a custom one in the MVTec layout) get "-", not nan.
        paper = [f"{v:.2f}" for v in PAPER[category][3:]] if category in PAPER else ["-", "-"]
        rows.append(f"| {category} | {paper[0]} | {paper[1]} | {ssim['pixel_auroc']:.3f} | "
                    f"{both['pixel_auroc']:.3f} | {both['aupro']:.3f} | {both['image_auroc']:.3f} |")
        print(rows[-1], f"({fit_seconds:.0f} s fit)", flush=True)
        results[category] = {"reports": reports, "fit_seconds": fit_seconds,
                             "codes_used": int(detector.history_[-1, "codes_used"])}

        m = maps["ssim+am"]
        threshold = threshold_from_normal(m[groups == "good"], quantile=0.995)
        defective = np.flatnonzero(data.anomalous)
        per_image = np.array([pixel_auroc(data.masks[i:i + 1], m[i:i + 1]) for i in defective])
        order = defective[np.argsort(per_image)]
        for name, chosen in (("worst", order[:4]), ("best", order[::-1][:4])):
            fig = plot_anomaly_maps(list(data.X_test[chosen]), list(m[chosen]),
                                    reconstructions=list(detector.reconstruct(data.X_test[chosen])),
                                    masks=list(data.masks[chosen]), threshold=threshold,
                                    titles=list(groups[chosen]))
            fig.savefig(out / f"{category}_{name}.png", dpi=80)

    env = environment(detector.net_.device)
    device_name, versions = env["device"], env["versions"]
    table = ["| category | VQ-VAE SSIM (paper) | VQ-VAE SSIM+AM (paper) | SSIM (ours) | SSIM+AM (ours) "
             "| AUPRO SSIM+AM | image AUROC SSIM+AM |", "|---|---|---|---|---|---|---|", *rows]
    footer = f"{device_name}; " + ", ".join(f"{k} {v}" for k, v in versions.items())
    print("\nPooled pixel AUROC, MVTec AD test sets\n\n" + "\n".join(table) + "\n\n" + footer)
    command = "python examples/mvtec_ad.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    (out / "mvtec_ad.json").write_text(json.dumps(
        {"command": command, "results": results, "device": device_name, "versions": versions,
         "params": {k: v for k, v in detector.get_params().items()
                    if isinstance(v, (int, float, str, type(None)))}}, indent=2))
    (out / "mvtec_ad.md").write_text(f"Command: `{command}`\n\n" + "\n".join(table) + f"\n\n{footer}\n")


if __name__ == "__main__":
    main()

"""MVTec AD: scoring settings on one kept network.

Loads a detector that ``examples/mvtec_ad.py --model-dir`` kept for one
category, scores that category's test set with a grid of scoring settings
(``score_map``, ``alignment``, ``ssim_window`` with ``ssim_sigma``,
``ssim_constants``, ``channel_reduction``, ``dilation_radius``,
``ssim_dilation_radius``), none of which changes the weights, and reports the
pooled pixel AUROC, AUPRO, per-image pixel AUROC and image AUROC of each,
overall and per defect type: which lever is worth a retraining, and which is
free.

    python benchmarks/mvtec_postprocessing.py --root path/to/mvtec_ad --category bottle \\
        --model models/bottle.skvqad --out benchmarks/results/mvtec_postprocessing_bottle_cpu
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from skvqad import VQVAEAnomalyDetector
from skvqad.datasets import load_mvtec_ad
from skvqad.metrics import pixel_report
from skvqad.utils import environment

from _common import add_device_argument, command_line, provenance, write_results

#: One setting at a time around the example's SSIM+AM (squared AM, radius 8,
#: an 11 px SSIM window), then the SSIM map alone with the SSIM variants.
BASE = {"score_map": "ssim+am", "alignment": "squared", "ssim_window": 11, "ssim_sigma": 1.5,
        "ssim_constants": None, "channel_reduction": "mean", "dilation_radius": 8,
        "ssim_dilation_radius": 0}
VARIANTS = [
    {},
    {"dilation_radius": 0}, {"dilation_radius": 4}, {"dilation_radius": 16},
    {"alignment": "relative"}, {"alignment": "bank"},
    {"ssim_window": 21, "ssim_sigma": 3.0}, {"ssim_window": 31, "ssim_sigma": 4.5},
    {"ssim_constants": (0.01, 0.03)}, {"channel_reduction": "max"},
    {"ssim_dilation_radius": 4}, {"ssim_dilation_radius": 8},
    {"score_map": "ssim"},
    {"score_map": "ssim", "ssim_window": 21, "ssim_sigma": 3.0},
    {"score_map": "ssim", "ssim_window": 31, "ssim_sigma": 4.5},
    {"score_map": "ssim", "ssim_constants": (0.01, 0.03)},
    {"score_map": "ssim", "channel_reduction": "max"},
    {"score_map": "ssim", "ssim_dilation_radius": 4},
    {"score_map": "am"}, {"score_map": "am", "alignment": "bank"},
]


def label(variant: dict) -> str:
    if not variant:
        return "SSIM+AM (as in the example)"
    return ", ".join(f"{k}={v}" for k, v in variant.items())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", required=True, help="folder holding the category folders")
    p.add_argument("--category", required=True)
    p.add_argument("--model", required=True, help="a detector kept by examples/mvtec_ad.py")
    p.add_argument("--image-size", type=int, default=256)
    add_device_argument(p)
    p.add_argument("--out", help="write <out>.json and <out>.md")
    args = p.parse_args(argv)

    data = load_mvtec_ad(args.root, args.category, image_size=args.image_size)
    groups = np.asarray(data.defect_types)
    detector = VQVAEAnomalyDetector.load(args.model, device=args.device)
    rows = []
    for variant in VARIANTS:
        start = time.perf_counter()
        maps = detector.set_params(**{**BASE, **variant}).anomaly_map(data.X_test)
        report = pixel_report(data.masks, maps, groups=groups)
        rows.append({"setting": label(variant), "variant": variant, "report": report,
                     "seconds": time.perf_counter() - start})
        a = report["all"]
        print(f"{label(variant)}: pooled {a['pixel_auroc']:.3f}, AUPRO {a['aupro']:.3f}, "
              f"image {a['image_auroc']:.3f}", flush=True)

    env = environment(detector.net_.device)
    command = command_line(__file__, argv)
    types = [g for g in rows[0]["report"] if g != "all"]
    trained = {k: v for k, v in detector.get_params().items()
               if k in ("hidden_channels", "embedding_dim", "n_embeddings", "max_epochs",
                        "batch_size", "random_state")}
    lines = [f"# MVTec AD {args.category}: scoring settings on one kept network", "",
             f"Network: {trained}, {detector.n_downsampling_} downsamplings, "
             f"{len(detector.history_)} epochs trained; every other setting as in the first row.",
             "", "| setting | pooled pixel AUROC | AUPRO | per-image pixel AUROC | image AUROC | "
             + " | ".join(f"{t} (pooled)" for t in types) + " |",
             "|---|---|---|---|---|" + "---|" * len(types)]
    for r in rows:
        a = r["report"]["all"]
        lines.append(f"| {r['setting']} | {a['pixel_auroc']:.3f} | {a['aupro']:.3f} | "
                     f"{a['per_image_pixel_auroc']:.3f} | {a['image_auroc']:.3f} | "
                     + " | ".join(f"{r['report'][t]['pixel_auroc']:.3f}" for t in types) + " |")
    lines += ["", provenance(command, env)]
    print("\n".join(lines))
    if args.out:
        write_results(args.out, {"command": command, "base": BASE, "network": trained,
                                 "rows": rows, **env}, lines)


if __name__ == "__main__":
    main()

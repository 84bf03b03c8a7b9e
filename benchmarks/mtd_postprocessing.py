"""Magnetic Tile Defect: post-processing search on one trained network.

Trains one network on the stated split of ``examples/magnetic_tile.py``
(80 % of MT_Free, seed 0), then scores the test set with a grid of
post-processing settings (``score_map``, ``ssim_window`` with
``ssim_sigma``, ``dilation_radius``, ``ssim_dilation_radius``, and a few with
``ssim_constants=(0.01, 0.03)`` or ``alignment="relative"``), none of which
changes the weights, and reports the pooled pixel AUROC, AUPRO and per-image pixel AUROC
of each. Results go to a JSON file and a markdown table.

    python benchmarks/mtd_postprocessing.py --root path/to/mtd --out benchmarks/results/mtd_postprocessing_cpu
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

from skvqad import VQVAEAnomalyDetector
from skvqad.datasets import load_folder_with_masks
from skvqad.metrics import pixel_report
from skvqad.utils import environment

# The example's split, defect types and --n-downsampling parser, so both use the same test set.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from magnetic_tile import DEFECTS, n_downsampling, split  # noqa: E402

from _common import add_device_argument, command_line, versions_text


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", required=True)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--max-epochs", type=int, default=25)
    p.add_argument("--hidden-channels", type=int, default=64)
    p.add_argument("--n-embeddings", type=int, default=128)
    p.add_argument("--n-downsampling", type=n_downsampling, default="auto",
                   help='stride-2 layers of the encoder: "auto" (3 at 128 px) or an integer')
    p.add_argument("--codebook-restart", action=argparse.BooleanOptionalAction, default=True)
    add_device_argument(p)
    p.add_argument("--out", required=True, help="path without extension for .json and .md")
    args = p.parse_args(argv)

    root = Path(args.root)
    data = load_folder_with_masks(root / "MT_Free" / "Imgs", [root / d / "Imgs" for d in DEFECTS],
                                  image_size=args.image_size)
    train, test = split(data)
    X_test, masks = data.images[test], data.masks[test]
    groups = np.asarray(data.defect_types)[test]
    # The pooled pixel AUROC weighs each type by its share of the anomalous pixels.
    anomalous_pixels = masks.sum()
    pixel_share = {d: float(masks[groups == d].sum() / anomalous_pixels) for d in DEFECTS}
    mask_coverage = {d: float(masks[groups == d].mean()) for d in DEFECTS}

    detector = VQVAEAnomalyDetector(
        hidden_channels=args.hidden_channels, embedding_dim=64, n_embeddings=args.n_embeddings,
        n_downsampling=args.n_downsampling,
        max_epochs=args.max_epochs, batch_size=32, codebook_restart=args.codebook_restart,
        device=args.device, random_state=0)
    start = time.perf_counter()
    detector.fit(data.images[train])
    fit_seconds = time.perf_counter() - start

    # SSIM scales: the window spans about 3.3 sigma each side.
    scales = ((11, 1.5), (21, 3.0), (31, 4.5), (41, 6.0))
    grid = [dict(score_map="ssim", ssim_window=w, ssim_sigma=s, dilation_radius=0,
                 ssim_dilation_radius=sd) for (w, s), sd in itertools.product(scales, (0, 4))]
    grid += [dict(score_map="ssim+am", ssim_window=w, ssim_sigma=s, dilation_radius=d,
                  ssim_dilation_radius=sd)
             for (w, s), d, sd in itertools.product(scales[:2], (2, 8), (0, 4))]
    # The SSIM constants as the paper's text writes them, and the relative AM.
    paper_c = (0.01, 0.03)
    grid += [dict(score_map="ssim", ssim_window=11, ssim_sigma=1.5, dilation_radius=0,
                  ssim_dilation_radius=sd, ssim_constants=paper_c) for sd in (0, 4)]
    grid += [dict(score_map="ssim+am", ssim_window=11, ssim_sigma=1.5, dilation_radius=2,
                  ssim_dilation_radius=0, alignment="relative", ssim_constants=c)
             for c in (None, paper_c)]
    defaults = dict(alignment="squared", ssim_constants=None)
    grid = [dict(defaults, **g) for g in grid]
    rows = []
    for settings in grid:
        maps = detector.set_params(**settings).anomaly_map(X_test)
        report = pixel_report(masks, maps, groups=groups)
        rows.append({"settings": settings, "all": report["all"],
                     "pixel_auroc_by_type": {g: r["pixel_auroc"] for g, r in report.items()
                                             if g != "all"}})
        print(settings, {k: round(v, 3) for k, v in report["all"].items()
                         if isinstance(v, float)}, flush=True)

    env = environment(detector.net_.device)
    command = command_line(__file__, argv)
    table = ["| score_map | alignment | ssim_window | ssim_sigma | ssim_constants | dilation_radius "
             "| ssim_dilation_radius | pooled pixel AUROC | AUPRO | per-image pixel AUROC | "
             + " | ".join(d[3:] for d in DEFECTS) + " |",
             "|---|---|---|---|---|---|---|---|---|---|" + "---|" * len(DEFECTS)]
    for r in rows:
        s, a = r["settings"], r["all"]
        constants = "default" if s["ssim_constants"] is None else str(s["ssim_constants"])
        table.append(f"| {s['score_map']} | {s['alignment']} | {s['ssim_window']} | "
                     f"{s['ssim_sigma']} | {constants} | "
                     f"{s['dilation_radius']} | "
                     f"{s['ssim_dilation_radius']} | {a['pixel_auroc']:.3f} | {a['aupro']:.3f} | "
                     f"{a['per_image_pixel_auroc']:.3f} | "
                     + " | ".join(f"{r['pixel_auroc_by_type'][d]:.3f}" for d in DEFECTS) + " |")
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(
        {"command": command, "fit_seconds": fit_seconds, "rows": rows,
         "anomalous_pixel_share": pixel_share, "mask_coverage": mask_coverage,
         "codes_used": [int(c) for c in detector.history_[:, "codes_used"]], **env}, indent=2) + "\n")
    out.with_suffix(".md").write_text(
        f"# Magnetic Tile Defect: post-processing on one network\n\nCommand: `{command}`  \n"
        f"Device: {env['device']}; " + versions_text(env["versions"])
        + f".  \nOne network ({args.hidden_channels} channels, M={args.n_embeddings}, "
        f"{detector.n_downsampling_} downsamplings, "
        f"{args.max_epochs} epochs, {args.image_size} px, codebook_restart="
        f"{args.codebook_restart}; trained in {fit_seconds:.0f} s; codes used in the last "
        f"epoch: {detector.history_[-1, 'codes_used']}), "
        "scored with each setting; split as in examples/magnetic_tile.py. Per-type columns: "
        "pooled pixel AUROC of that type's images with all normal test images.\n\n"
        + "\n".join(table) + "\n\nEach defect type's share of the anomalous test pixels (what "
        "weighs it in the pooled figure) and the mean fraction of its images that its masks "
        "cover: " + "; ".join(f"{d[3:]} {pixel_share[d]:.1%} ({mask_coverage[d]:.1%})"
                              for d in DEFECTS) + ".\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()

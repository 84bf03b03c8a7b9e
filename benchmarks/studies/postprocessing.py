"""Scoring settings on one trained network: which post-processing helps the pixel maps.

None of the settings changes the weights, so one network is scored with each
and the levers that are free are told apart from those worth a retraining.

* ``--data mtd``: trains one network on the split of
  ``examples/magnetic_tile.py`` (80 % of MT_Free, seed 0) and scores its test
  set with a grid (``MTD_GRID``: SSIM window scales with and without an SSIM
  dilation, SSIM+AM with AM dilations, the SSIM constants as the paper's text
  writes them, the relative AM). ``--model`` scores a kept detector instead.
* ``--data mvtec``: loads a detector that ``examples/mvtec_ad.py --model-dir``
  kept for one category and changes one setting at a time around the
  example's SSIM+AM (``MVTEC_VARIANTS``).

Each setting's pooled pixel AUROC, AUPRO, per-image pixel AUROC and image
AUROC, overall and per defect type (that type's images with all normal test
images), go to ``<out>.json`` and ``<out>.md``::

    python benchmarks/studies/postprocessing.py --data mtd --root path/to/mtd \\
        --out benchmarks/results/mtd_postprocessing_cpu
    python benchmarks/studies/postprocessing.py --data mvtec --root path/to/mvtec_ad \\
        --category bottle --model models/bottle.skvqad \\
        --out benchmarks/results/mvtec_postprocessing_bottle_cpu

(It merges ``benchmarks/mtd_postprocessing.py`` and
``benchmarks/mvtec_postprocessing.py``, whose commands the results written
before name; the grids are theirs.)
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

from skvqad import VQVAEAnomalyDetector
from skvqad.datasets import load_folder_with_masks, load_mvtec_ad
from skvqad.metrics import pixel_report
from skvqad.utils import environment

BENCHMARKS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BENCHMARKS))  # _common, beside the speed benchmarks
# The example's split, defect types and --n-downsampling parser, so both use the same test set.
sys.path.insert(0, str(BENCHMARKS.parent / "examples"))
from magnetic_tile import DEFECTS, n_downsampling, split  # noqa: E402

from _common import add_device_argument, command_line, provenance, write_results  # noqa: E402

#: MTD: SSIM scales (the window spans about 3.3 sigma each side) with and without an SSIM
#: dilation, SSIM+AM with AM dilations, the paper's text's SSIM constants, the relative AM.
_SCALES = ((11, 1.5), (21, 3.0), (31, 4.5), (41, 6.0))
_PAPER_C = (0.01, 0.03)
MTD_GRID = [dict(score_map="ssim", ssim_window=w, ssim_sigma=s, dilation_radius=0,
                 ssim_dilation_radius=sd) for (w, s), sd in itertools.product(_SCALES, (0, 4))]
MTD_GRID += [dict(score_map="ssim+am", ssim_window=w, ssim_sigma=s, dilation_radius=d,
                  ssim_dilation_radius=sd)
             for (w, s), d, sd in itertools.product(_SCALES[:2], (2, 8), (0, 4))]
MTD_GRID += [dict(score_map="ssim", ssim_window=11, ssim_sigma=1.5, dilation_radius=0,
                  ssim_dilation_radius=sd, ssim_constants=_PAPER_C) for sd in (0, 4)]
MTD_GRID += [dict(score_map="ssim+am", ssim_window=11, ssim_sigma=1.5, dilation_radius=2,
                  ssim_dilation_radius=0, alignment="relative", ssim_constants=c)
             for c in (None, _PAPER_C)]
MTD_GRID = [dict(dict(alignment="squared", ssim_constants=None), **g) for g in MTD_GRID]

#: MVTec: one setting at a time around the example's SSIM+AM (squared AM, radius 8, an
#: 11 px SSIM window), then the SSIM map alone with the SSIM variants.
MVTEC_BASE = {"score_map": "ssim+am", "alignment": "squared", "ssim_window": 11,
              "ssim_sigma": 1.5, "ssim_constants": None, "channel_reduction": "mean",
              "dilation_radius": 8, "ssim_dilation_radius": 0}
MVTEC_VARIANTS = [
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


def label(setting: dict, base: dict | None = None) -> str:
    """The setting as text: what differs from ``base`` (all of it without one)."""
    shown = {k: v for k, v in setting.items() if base is None or base.get(k) != v}
    return ", ".join(f"{k}={v}" for k, v in shown.items()) or "as in the example"


def mtd(args):
    """The MTD test set, its settings, the detector (trained here or loaded) and notes."""
    root = Path(args.root)
    data = load_folder_with_masks(root / "MT_Free" / "Imgs", [root / d / "Imgs" for d in DEFECTS],
                                  image_size=args.image_size)
    train, test = split(data)
    masks, groups = data.masks[test], np.asarray(data.defect_types)[test]
    # The pooled pixel AUROC weighs each type by its share of the anomalous pixels.
    share = {d: float(masks[groups == d].sum() / masks.sum()) for d in DEFECTS}
    coverage = {d: float(masks[groups == d].mean()) for d in DEFECTS}
    start = time.perf_counter()
    if args.model:
        detector = VQVAEAnomalyDetector.load(args.model, device=args.device)
    else:
        detector = VQVAEAnomalyDetector(
            hidden_channels=args.hidden_channels, embedding_dim=64, n_embeddings=args.n_embeddings,
            n_downsampling=args.n_downsampling, max_epochs=args.max_epochs, batch_size=32,
            codebook_restart=args.codebook_restart, device=args.device, random_state=0,
        ).fit(data.images[train])
    fit_seconds = None if args.model else time.perf_counter() - start
    codes = [int(c) for c in detector.history_[:, "codes_used"]]
    extra = {"fit_seconds": fit_seconds, "anomalous_pixel_share": share,
             "mask_coverage": coverage, "codes_used": codes}
    trained = (f"loaded from {args.model}" if args.model
               else f"trained here in {fit_seconds:.0f} s")
    notes = [f"The network was {trained}; {codes[-1]} codes used in its last epoch. "
             "Split as in examples/magnetic_tile.py. Each defect type's share of the anomalous "
             "test pixels (what weighs it in the pooled figure) and the mean fraction of its "
             "images that its masks cover: "
             + "; ".join(f"{d[3:]} {share[d]:.1%} ({coverage[d]:.1%})" for d in DEFECTS) + "."]
    return data.images[test], masks, groups, detector, MTD_GRID, None, extra, notes


def mvtec(args):
    """The category's test set, its settings, the kept detector and notes."""
    if not (args.category and args.model):
        raise SystemExit("--data mvtec needs --category and --model (a detector kept by "
                         "examples/mvtec_ad.py --model-dir)")
    data = load_mvtec_ad(args.root, args.category, image_size=args.image_size or 256)
    detector = VQVAEAnomalyDetector.load(args.model, device=args.device)
    settings = [{**MVTEC_BASE, **v} for v in MVTEC_VARIANTS]
    return (data.X_test, data.masks, np.asarray(data.defect_types), detector, settings,
            MVTEC_BASE, {}, [])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", choices=["mtd", "mvtec"], required=True)
    p.add_argument("--root", required=True, help="the data set's folder")
    p.add_argument("--category", help="mvtec: the category")
    p.add_argument("--model", help="a kept detector to score (mvtec: required; mtd: trains one "
                   "without it)")
    p.add_argument("--image-size", type=int, help="default: 128 (mtd), 256 (mvtec)")
    p.add_argument("--max-epochs", type=int, default=25, help="mtd: training epochs")
    p.add_argument("--hidden-channels", type=int, default=64, help="mtd")
    p.add_argument("--n-embeddings", type=int, default=128, help="mtd")
    p.add_argument("--n-downsampling", type=n_downsampling, default="auto",
                   help='mtd: stride-2 layers of the encoder, "auto" (3 at 128 px) or an integer')
    p.add_argument("--codebook-restart", action=argparse.BooleanOptionalAction, default=True,
                   help="mtd")
    add_device_argument(p)
    p.add_argument("--out", required=True, help="path without extension for .json and .md")
    args = p.parse_args(argv)
    if args.data == "mtd" and args.image_size is None:
        args.image_size = 128

    X_test, masks, groups, detector, settings, base, extra, notes = (
        mtd(args) if args.data == "mtd" else mvtec(args))
    rows = []
    for setting in settings:
        start = time.perf_counter()
        maps = detector.set_params(**setting).anomaly_map(X_test)
        report = pixel_report(masks, maps, groups=groups)
        rows.append({"setting": label(setting, base), "settings": setting, "all": report["all"],
                     "by_type": {g: r for g, r in report.items() if g != "all"},
                     "seconds": time.perf_counter() - start})
        a = report["all"]
        print(f"{rows[-1]['setting']}: pooled {a['pixel_auroc']:.3f}, AUPRO {a['aupro']:.3f}, "
              f"image {a['image_auroc']:.3f}", flush=True)

    env = environment(detector.net_.device)
    command = command_line(__file__, argv)
    types = sorted(rows[0]["by_type"])
    network = {k: v for k, v in detector.get_params().items()
               if k in ("hidden_channels", "embedding_dim", "n_embeddings", "max_epochs",
                        "batch_size", "codebook_restart", "random_state")}
    lines = [f"# {args.data}{' ' + args.category if args.category else ''}: scoring settings "
             "on one network", "",
             f"Network: {network}, {detector.n_downsampling_} downsamplings, "
             f"{len(detector.history_)} epochs trained, {X_test.shape[1]} px"
             + (f"; every other setting as in the first row ({label(base)})." if base else "."),
             *([""] + notes if notes else []), "",
             "| setting | pooled pixel AUROC | AUPRO | per-image pixel AUROC | image AUROC | "
             + " | ".join(f"{t} (pooled)" for t in types) + " |",
             "|---|---|---|---|---|" + "---|" * len(types)]
    for r in rows:
        a = r["all"]
        lines.append(f"| {r['setting']} | {a['pixel_auroc']:.3f} | {a['aupro']:.3f} | "
                     f"{a['per_image_pixel_auroc']:.3f} | {a['image_auroc']:.3f} | "
                     + " | ".join(f"{r['by_type'][t]['pixel_auroc']:.3f}" for t in types) + " |")
    lines += ["", provenance(command, env)]
    print("\n".join(lines))
    write_results(args.out, {"command": command, "data": args.data, "network": network,
                             "rows": rows, **extra, **env}, lines)


if __name__ == "__main__":
    main()

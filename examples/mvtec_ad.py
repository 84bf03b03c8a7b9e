"""MVTec AD: pixel AUROC per category (the paper's Table I)
=========================================================

The protocol of Section III-B of Gangloff et al. (2022): one VQ-VAE per
category, trained on its defect-free training images resized to 256 x 256
(3 downsamplings, a 32 x 32 latent grid, M = 512, D = 256), and the pooled
pixel AUROC of VQ-VAE SSIM and SSIM+AM on the test images, printed next to
Table I. Beside them: the AM alone, the relative and bank alignments, AUPRO,
per-image pixel AUROC and image AUROC (mean, max and 99th-percentile pooling),
and a pixel baseline fitted on the same images in the same run, the squared
error of each pixel's PCA reconstruction
(:func:`skvqad.baselines.pca_residual_maps`).
Figures of the best and worst test images of each category are saved (paper
Fig. 2 layout; threshold: the 99.5th percentile of the maps of the good test
images).

Each category's result is written to ``<out>/rows/<category>.json`` as soon as
it is done, and a category whose file exists is skipped: an interrupted run
resumes where it stopped. With ``--model-dir`` the trained detectors are kept
(``<category>.skvqad``) and reused, so scoring can be redone without training,
and a category's training state is written there after each epoch
(``<category>.checkpoint/``): a run stopped mid-training resumes after the
last completed epoch.

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
from sklearn.base import clone

from skvqad import VQVAEAnomalyDetector
from skvqad.baselines import pca_residual_maps
from skvqad.datasets import load_mvtec_ad
from skvqad.detector import SCORING_PARAMS
from skvqad.metrics import pixel_auroc, pixel_report
from skvqad.plotting import plot_anomaly_maps
from skvqad.thresholds import threshold_from_normal
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

#: The scoring settings evaluated on each category, from one trained network.
SETTINGS = {name: {"prior_radius": 0, **setting} for name, setting in {
    "SSIM": {"score_map": "ssim", "alignment": "squared"},
    "AM": {"score_map": "am", "alignment": "squared"},
    "SSIM+AM": {"score_map": "ssim+am", "alignment": "squared"},
    "AM relative": {"score_map": "am", "alignment": "relative"},
    "SSIM+AM relative": {"score_map": "ssim+am", "alignment": "relative"},
    "AM bank": {"score_map": "am", "alignment": "bank"},
    "SSIM+AM bank": {"score_map": "ssim+am", "alignment": "bank"},
    # Beyond the paper: the code prior (benchmarks/studies/prior_study.py compares more settings).
    "prior": {"score_map": "prior", "alignment": "squared"},
    "prior r1": {"score_map": "prior", "alignment": "squared", "prior_radius": 1},
    "z(SSIM+AM, prior)": {"score_map": ("ssim+am", "prior"), "alignment": "squared"},
}.items()}
#: The pixel baseline's name in the reports.
BASELINE = "PCA residual (pixels)"
#: Image-score poolings reported beside the mean (pixel metrics do not depend on them).
POOLINGS = {"max": "max", "q99": 0.99}


def run_category(template, data, category, out, model_dir, figures=True):
    """Train (or load) one category's detector and evaluate every setting."""
    groups = np.asarray(data.defect_types)
    model = model_dir / f"{category}.skvqad" if model_dir else None
    start = time.perf_counter()
    trained = model is None or not model.exists()
    if trained:
        # With --model-dir, a fit stopped mid-way (a killed job, the end of a session)
        # resumes after its last completed epoch when the command is run again.
        checkpoint = None if model_dir is None else model_dir / f"{category}.checkpoint"
        detector = clone(template).set_params(checkpoint_dir=checkpoint).fit(data.X_train)
        if model is not None:
            detector.save(model)
    else:
        detector = VQVAEAnomalyDetector.load(model, device=template.device)
        saved = detector.get_params()
        differ = {k: (v, saved[k]) for k, v in template.get_params().items()
                  if k not in (*SCORING_PARAMS, "device", "verbose", "checkpoint_dir")
                  and saved[k] != v}
        if differ:
            raise SystemExit(f"{model} was trained with other parameters than asked "
                             f"(asked, saved): {differ}. Remove it, or ask for the same.")
    fit_seconds = time.perf_counter() - start if trained else None
    # Per-epoch durations from the history (kept in a saved model too): their
    # median times the epochs is the training time of an undisturbed run.
    epoch_seconds = [float(d) for d in detector.history_[:, "dur"]]

    start = time.perf_counter()
    # Fused maps are calibrated under the detector's pooling (the mean) only.
    pooled = detector.score_samples_multi(data.X_test, {
        f"{name}|{pool}": {**setting, "score_pooling": pooling}
        for name, setting in SETTINGS.items() for pool, pooling in POOLINGS.items()
        if isinstance(setting["score_map"], str)})
    reports, maps = {}, {}
    for name, setting in SETTINGS.items():
        maps[name] = detector.set_params(**setting).anomaly_map(data.X_test)
        report = pixel_report(data.masks, maps[name], groups=groups)
        report["all"]["image_auroc_pooled"] = {
            pool: pixel_report(data.masks, maps[name], scores=-pooled[f"{name}|{pool}"])["all"][
                "image_auroc"] for pool in POOLINGS if f"{name}|{pool}" in pooled}
        reports[name] = report
    score_seconds = time.perf_counter() - start
    reports[BASELINE] = pixel_report(data.masks, pca_residual_maps(data.X_train, data.X_test),
                                     groups=groups)

    m = maps["SSIM+AM"]
    threshold = threshold_from_normal(m[groups == "good"], quantile=0.995)
    defective = np.flatnonzero(data.anomalous)
    per_image = np.array([pixel_auroc(data.masks[i:i + 1], m[i:i + 1]) for i in defective])
    order = defective[np.argsort(per_image)]
    detector.set_params(**SETTINGS["SSIM+AM"])
    for name, chosen in (("worst", order[:4]), ("best", order[::-1][:4])) if figures else ():
        fig = plot_anomaly_maps(list(data.X_test[chosen]), list(m[chosen]),
                                reconstructions=list(detector.reconstruct(data.X_test[chosen])),
                                masks=list(data.masks[chosen]), threshold=threshold,
                                titles=list(groups[chosen]))
        fig.savefig(out / f"{category}_{name}.png", dpi=80)
    params = {k: v for k, v in detector.get_params().items()
              if isinstance(v, (int, float, str, type(None)))}
    return {"reports": reports, "params": params, **environment(detector.net_.device),
            "fit_seconds": fit_seconds, "epoch_seconds": epoch_seconds,
            "train_minutes": float(np.median(epoch_seconds)) * len(epoch_seconds) / 60,
            "score_seconds": score_seconds,
            "codes_used": int(detector.history_[-1, "codes_used"]),
            "n_train": len(data.X_train), "n_test": len(data.X_test)}


def table_rows(results):
    """One markdown row per category: the paper's two columns, then ours."""
    rows = []
    for category, result in results.items():
        r = {name: rep["all"] for name, rep in result["reports"].items()}
        paper = [f"{v:.2f}" for v in PAPER[category][3:]] if category in PAPER else ["-", "-"]
        rows.append(
            f"| {category} | {paper[0]} | {paper[1]} | {r['SSIM']['pixel_auroc']:.3f} | "
            f"{r['AM']['pixel_auroc']:.3f} | {r['SSIM+AM']['pixel_auroc']:.3f} | "
            f"{r['SSIM+AM relative']['pixel_auroc']:.3f} | {r['SSIM+AM bank']['pixel_auroc']:.3f} | "
            f"{r['SSIM+AM']['aupro']:.3f} | {r['SSIM+AM']['image_auroc']:.3f} | "
            + " | ".join(f"{r[k][m]:.3f}" if k in r else "-" for k, m in (
                ("prior", "pixel_auroc"), ("prior r1", "pixel_auroc"),
                ("z(SSIM+AM, prior)", "image_auroc"), (BASELINE, "pixel_auroc")))
            + f" | {result['train_minutes']:.0f} |")
    return rows


def detail_rows(results):
    """Every setting of every category: all the metrics."""
    rows = []
    for category, result in results.items():
        for name, rep in result["reports"].items():
            a = rep["all"]
            pooled = a.get("image_auroc_pooled", {})
            rows.append(f"| {category} | {name} | {a['pixel_auroc']:.3f} | "
                        f"{a['per_image_pixel_auroc']:.3f} | {a['aupro']:.3f} | "
                        f"{a['image_auroc']:.3f} | "
                        + " | ".join(f"{pooled[k]:.3f}" if k in pooled else "-" for k in ("max", "q99"))
                        + " |")
    return rows


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
    parser.add_argument("--loss-reduction", choices=["mean", "sum"], default="mean",
                        help="each term of eq. 4 averaged (the default) or summed per image")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--mixed-precision", choices=["auto", "true", "false"], default="auto")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="mvtec_results", help="folder for JSON, markdown and figures")
    parser.add_argument("--model-dir", help="keep the trained detectors here, and reuse them")
    parser.add_argument("--no-figures", action="store_true",
                        help="skip the figures of the best and worst test images")
    args = parser.parse_args(argv)
    out = Path(args.out)
    (out / "rows").mkdir(parents=True, exist_ok=True)
    model_dir = Path(args.model_dir) if args.model_dir else None
    if model_dir is not None:
        model_dir.mkdir(parents=True, exist_ok=True)

    precision = {"auto": "auto", "true": True, "false": False}[args.mixed_precision]
    template = VQVAEAnomalyDetector(
        hidden_channels=args.hidden_channels,
        embedding_dim=args.embedding_dim or args.hidden_channels,
        n_embeddings=args.n_embeddings, n_downsampling=args.n_downsampling or "auto",
        dilation_radius=args.dilation_radius, max_epochs=args.max_epochs,
        batch_size=args.batch_size, loss_reduction=args.loss_reduction,
        mixed_precision=precision, device=args.device,
        random_state=args.random_state,
    )
    results = {}
    for category in args.categories:
        row_file = out / "rows" / f"{category}.json"
        if row_file.exists():
            results[category] = json.loads(row_file.read_text())
            print(f"{category}: done already ({row_file})", flush=True)
            continue
        data = load_mvtec_ad(args.root, category, image_size=args.image_size)
        results[category] = run_category(template, data, category, out, model_dir,
                                         figures=not args.no_figures)
        row_file.write_text(json.dumps(results[category], indent=2))
        print(table_rows({category: results[category]})[0], flush=True)

    # Each row records where it was computed; rows of an earlier run may come from elsewhere.
    envs = {(r["device"], json.dumps(r["versions"])) for r in results.values()}
    footer = "; ".join(f"{device}, " + ", ".join(f"{k} {v}" for k, v in json.loads(v).items())
                       for device, v in sorted(envs))
    table = ["| category | VQ-VAE SSIM (paper) | VQ-VAE SSIM+AM (paper) | SSIM | AM | SSIM+AM "
             "| SSIM+AM relative | SSIM+AM bank | AUPRO SSIM+AM | image AUROC SSIM+AM | prior "
             "| prior r1 | image AUROC z(SSIM+AM, prior) | PCA residual (pixels) | training (min) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|", *table_rows(results)]
    detail = ["| category | setting | pooled pixel AUROC | per-image pixel AUROC | AUPRO "
              "| image AUROC (mean) | image AUROC (max) | image AUROC (q99) |",
              "|---|---|---|---|---|---|---|---|", *detail_rows(results)]
    print("\nPooled pixel AUROC, MVTec AD test sets\n\n" + "\n".join(table) + "\n\n" + footer)
    command = "python examples/mvtec_ad.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    (out / "mvtec_ad.json").write_text(json.dumps(
        {"command": command, "results": results, "environments": footer}, indent=2))
    (out / "mvtec_ad.md").write_text(
        f"Command: `{command}`\n\nPooled pixel AUROC; AUPRO (FPR <= 0.3) and image AUROC "
        "(mean of the map) of SSIM+AM; training time: the median epoch duration times the "
        "epochs (robust to a paused or shared machine).\n\n"
        + "\n".join(table) + "\n\nEvery setting:\n\n" + "\n".join(detail) + f"\n\n{footer}\n")


if __name__ == "__main__":
    main()

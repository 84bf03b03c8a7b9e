"""The code prior beside the paper's maps: which setting, on which data (issue #25).

Every scoring setting below is read from the same trained network of each
data set (``score_map`` and the prior's parameters change no weights):

* the paper's maps, SSIM, AM and SSIM+AM;
* the code prior (``score_map="prior"``), per position (``r0``), with the
  counts pooled over a neighbourhood of latent positions (``r1``, ``r2``:
  tolerates misalignment) and position-free (``global``), and with other
  smoothings;
* fused scores: the highest of the maps' scores standardised on the
  training images (``z(AM, prior)``, ...; a tuple ``score_map``).

The committed bottle and MTD results also have ``SSIM+prior``, the prior map
times ``1 - SSIM``: it never beat the prior alone (there, nor on CIFAR-10 or
the digits), so it left the package after these runs.

``--data bottle`` and ``--data mtd`` train one detector (or take it from the
``--model-dir`` cache) on the MVTec AD bottle category or on the Magnetic Tile
Defect split of ``examples/magnetic_tile.py``, at the configuration of the
issue (128 px, 64 channels, D = 64, 2 downsamplings; bottle M = 512, 30
epochs; MTD M = 256, 25 epochs), and report the image AUROC (mean and max
pooling), the pooled pixel AUROC and AUPRO of every setting, beside pixel
baselines fitted on the same images in the same run (kNN distance, PCA
reconstruction error and IsolationForest on the pixels for the image
AUROC; the PCA reconstruction's per-pixel squared error for the pixel
metrics). The fused scores under max pooling come from a second fit that
takes the network from the cache (calibrated under that pooling).

``--data cifar10`` reads the detectors that
``examples/cifar10_one_vs_rest.py --model-dir`` kept (e.g. its ``--proxy``
run) and reports the one-vs-rest image AUROC of every setting, per class,
on all 10,000 test images (no training).

Commands::

    python benchmarks/studies/prior_study.py --data bottle --root <mvtec_bottle_256> \\
        --model-dir <cache> --out benchmarks/results/prior_bottle_cpu
    python benchmarks/studies/prior_study.py --data mtd --root <mtd> --model-dir <cache> \\
        --out benchmarks/results/prior_mtd_cpu
    python benchmarks/studies/prior_study.py --data cifar10 --root <cifar10-jpg> \\
        --model-dir <models of the --proxy run> --out benchmarks/results/prior_cifar10_proxy_cpu
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from skvqad import VQVAEAnomalyDetector
from skvqad.baselines import pca_residual_maps, pixel_baselines
from skvqad.datasets import load_folder_with_masks, load_image_folder, load_mvtec_ad
from skvqad.metrics import pixel_report
from skvqad.utils import environment

# _common lives in benchmarks/, beside the speed benchmarks.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import add_device_argument, command_line, provenance, write_results  # noqa: E402

#: Every setting names every parameter that another one changes (set_params keeps the rest).
_BASE = {"alignment": "squared", "prior_radius": 0, "prior_smoothing": 0.5}
SETTINGS = {name: {**_BASE, **setting} for name, setting in {
    "SSIM": {"score_map": "ssim"},
    "AM": {"score_map": "am"},
    "SSIM+AM": {"score_map": "ssim+am"},
    "prior": {"score_map": "prior"},
    "prior r1": {"score_map": "prior", "prior_radius": 1},
    "prior r2": {"score_map": "prior", "prior_radius": 2},
    "prior global": {"score_map": "prior", "prior_radius": 1000},
    "prior a=0.05": {"score_map": "prior", "prior_smoothing": 0.05},
    "prior a=2": {"score_map": "prior", "prior_smoothing": 2.0},
    "z(AM, prior)": {"score_map": ("am", "prior")},
    "z(SSIM+AM, prior)": {"score_map": ("ssim+am", "prior")},
    "z(SSIM, prior)": {"score_map": ("ssim", "prior")},
    "z(SSIM, AM, prior)": {"score_map": ("ssim", "am", "prior")},
    # Calibrated with the prior's counts pooled over neighbouring positions (a third fit,
    # the network from the cache; industrial sets only).
    "z(AM, prior r1)": {"score_map": ("am", "prior"), "prior_radius": 1},
    "z(SSIM+AM, prior r1)": {"score_map": ("ssim+am", "prior"), "prior_radius": 1},
}.items()}
#: The issue's configurations: 128 px, 64 channels, 2 downsamplings.
CONFIGS = {
    "bottle": dict(hidden_channels=64, embedding_dim=64, n_embeddings=512, n_downsampling=2,
                   max_epochs=30, batch_size=16),
    "mtd": dict(hidden_channels=64, embedding_dim=64, n_embeddings=256, n_downsampling=2,
                max_epochs=25, batch_size=32),
}


def fused(setting) -> bool:
    return not isinstance(setting["score_map"], str)


def calibrated_for(settings, **params):
    """The settings whose fused maps a detector fitted with ``params`` has calibrated."""
    return {k: s for k, s in settings.items()
            if not fused(s) or all(s[p] == v for p, v in params.items())}


def load_industrial(data, root, image_size):
    """(X_train, X_test, masks, groups) of bottle or of the MTD split of the example."""
    if data == "bottle":
        bunch = load_mvtec_ad(root, "bottle", image_size=image_size)
        return bunch.X_train, bunch.X_test, bunch.masks, np.asarray(bunch.defect_types)
    root = Path(root)
    defects = ("MT_Blowhole", "MT_Break", "MT_Crack", "MT_Fray", "MT_Uneven")
    bunch = load_folder_with_masks(root / "MT_Free" / "Imgs", [root / d / "Imgs" for d in defects],
                                   image_size=image_size)
    # The split of examples/magnetic_tile.py: 80 % of MT_Free (seed 0) for training.
    normal = np.flatnonzero(~bunch.anomalous)
    order = np.random.default_rng(0).permutation(normal)
    train = np.sort(order[:int(round(0.8 * len(normal)))])
    test = np.setdiff1d(np.arange(len(bunch.images)), train)
    return (bunch.images[train], bunch.images[test], bunch.masks[test],
            np.asarray(bunch.defect_types)[test])


def run_industrial(args):
    X_train, X_test, masks, groups = load_industrial(args.data, args.root, args.image_size)
    anomalous = groups != "good"
    template = VQVAEAnomalyDetector(**CONFIGS[args.data], device=args.device, random_state=0,
                                    memory=args.model_dir)
    start = time.perf_counter()
    detector = clone(template).fit(X_train)
    fit_seconds = time.perf_counter() - start
    # The same network from the cache, calibrated under max pooling and with the prior's
    # radius 1 for the fused scores that need it.
    start = time.perf_counter()
    fits = {(pooling, radius): detector if (pooling, radius) == ("mean", 0) else
            clone(template).set_params(score_pooling=pooling, prior_radius=radius).fit(X_train)
            for pooling in ("mean", "max") for radius in (0, 1)}
    refit_seconds = (time.perf_counter() - start) / 3

    rows = {}
    mean_scores, max_scores = {}, {}
    for (pooling, radius), det in fits.items():
        chosen = calibrated_for(SETTINGS, prior_radius=radius)
        scores = det.score_samples_multi(
            X_test, {k: {**s, "score_pooling": pooling} for k, s in chosen.items()})
        (mean_scores if pooling == "mean" else max_scores).update(
            {k: v for k, v in scores.items() if fused(chosen[k]) or radius == 0})
    for name, setting in SETTINGS.items():
        det = fits["mean", setting["prior_radius"] if fused(setting) else 0]
        maps = det.set_params(**setting).anomaly_map(X_test)
        report = pixel_report(masks, maps, groups=groups, scores=-mean_scores[name])["all"]
        rows[name] = {"image_auroc_mean": roc_auc_score(anomalous, -mean_scores[name]),
                      "image_auroc_max": roc_auc_score(anomalous, -max_scores[name]),
                      "pixel_auroc": report["pixel_auroc"], "aupro": report["aupro"]}
        print(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in rows[name].items()), flush=True)
    baselines = {}
    for key, model in pixel_baselines(random_state=0).items():
        scores = model.fit(X_train).score_samples(X_test)
        baselines[key] = {"image_auroc": roc_auc_score(anomalous, -scores)}
    residual = pca_residual_maps(X_train, X_test)
    report = pixel_report(masks, residual, groups=groups)["all"]
    peak = residual.reshape(len(residual), -1).max(1)
    baselines["pca"].update(pixel_auroc=report["pixel_auroc"], aupro=report["aupro"],
                            image_auroc_max=roc_auc_score(anomalous, peak))
    return {"rows": rows, "baselines": baselines, "fit_seconds": fit_seconds,
            "refit_seconds": refit_seconds, "n_train": len(X_train), "n_test": len(X_test),
            "params": {k: v for k, v in detector.get_params().items()
                       if isinstance(v, (int, float, str, type(None)))},
            "codes_used": int(detector.history_[-1, "codes_used"]),
            **environment(detector.net_.device)}


def industrial_table(result, data) -> list[str]:
    b = result["baselines"]
    lines = ["| setting | image AUROC (mean) | image AUROC (max) | pixel AUROC | AUPRO |",
             "|---|---|---|---|---|"]
    for name, r in result["rows"].items():
        lines.append(f"| {name} | {r['image_auroc_mean']:.3f} | {r['image_auroc_max']:.3f} | "
                     f"{r['pixel_auroc']:.3f} | {r['aupro']:.3f} |")
    lines.append(f"| *PCA error (pixels)* | {b['pca']['image_auroc']:.3f} | "
                 f"{b['pca']['image_auroc_max']:.3f} (max of the residual map) | "
                 f"{b['pca']['pixel_auroc']:.3f} | {b['pca']['aupro']:.3f} |")
    for key, label in (("knn", "kNN distance (pixels)"), ("iforest", "IsolationForest (pixels)")):
        lines.append(f"| *{label}* | {b[key]['image_auroc']:.3f} | - | - | - |")
    return lines


def run_cifar10(args):
    model_dir = Path(args.model_dir)
    test = load_image_folder(args.root, split="test", color_mode="rgb")
    names = list(test.target_names)
    rows = []
    for k, name in enumerate(names):
        path = model_dir / f"{name}.skvqad"
        if not path.exists():
            print(f"{name}: no {path}, skipped", flush=True)
            continue
        detector = VQVAEAnomalyDetector.load(path, device=args.device)
        scores = detector.score_samples_multi(test.images, calibrated_for(SETTINGS, prior_radius=0))
        row = {"class": name, **{s: roc_auc_score(test.target == k, v) for s, v in scores.items()}}
        rows.append(row)
        print(f"{name}: " + ", ".join(f"{s} {v:.3f}" for s, v in row.items() if s != "class"),
              flush=True)
    env = environment(detector.net_.device)
    return {"rows": rows, "params": {k: v for k, v in detector.get_params().items()
                                     if isinstance(v, (int, float, str, type(None)))}, **env}


def cifar10_table(result) -> list[str]:
    rows = result["rows"]
    lines = ["| setting | mean | " + " | ".join(r["class"] for r in rows) + " |",
             "|---|---|" + "---|" * len(rows)]
    for name in calibrated_for(SETTINGS, prior_radius=0):
        values = [r[name] for r in rows]
        lines.append(f"| {name} | **{np.mean(values):.3f}** | "
                     + " | ".join(f"{v:.3f}" for v in values) + " |")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=["bottle", "mtd", "cifar10"], required=True)
    parser.add_argument("--root", required=True, help="the data set's folder")
    parser.add_argument("--model-dir", required=True,
                        help="bottle, mtd: the joblib cache of the trained network (made if "
                        "absent); cifar10: the detectors kept by the CIFAR-10 example")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--max-epochs", type=int, help="override the configuration's epochs")
    parser.add_argument("--out", required=True, help="<out>.json and <out>.md")
    add_device_argument(parser)
    args = parser.parse_args(argv)
    if args.max_epochs:
        for config in CONFIGS.values():
            config["max_epochs"] = args.max_epochs
    command = command_line(__file__, argv)
    if args.data == "cifar10":
        result = run_cifar10(args)
        lines = [f"# The code prior on CIFAR-10 one-vs-rest ({len(result['rows'])} classes)", "",
                 "Image AUROC of each scoring setting, read from the detectors kept by the "
                 "CIFAR-10 example (all 10,000 test images).", "", *cifar10_table(result)]
    else:
        result = run_industrial(args)
        config = CONFIGS[args.data]
        lines = [f"# The code prior on {args.data}", "",
                 f"{result['n_train']} training and {result['n_test']} test images of "
                 f"{args.image_size} px; network {config}; training {result['fit_seconds']:.0f} s "
                 f"(each further fit, from the cache: {result['refit_seconds']:.0f} s); "
                 f"{result['codes_used']} codes used in the last epoch.", "",
                 *industrial_table(result, args.data)]
    result["command"] = command
    lines += ["", provenance(command, result)]
    print("\n".join(lines))
    write_results(args.out, result, lines)


if __name__ == "__main__":
    main()

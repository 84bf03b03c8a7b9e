"""Image score pooling and the bank AM, side by side (issue #14).

Every scoring setting of the grid below is read from one pass of the same
networks (:meth:`~skvqad.VQVAEAnomalyDetector.score_samples_multi`):

* ``score_map``: ``ssim``, ``am`` and ``ssim+am``;
* ``alignment`` (for ``am`` and ``ssim+am``): the paper's ``squared``,
  ``relative`` and ``bank`` (the nearest of ``bank_size`` training encoder
  outputs);
* ``score_pooling``: the paper's ``mean``, ``max`` and the 0.9, 0.99 and
  0.999 quantiles of each map.

Data sets (``--data``):

* ``digits``: scikit-learn's digits, one-vs-rest, the network and split of
  ``examples/digits_one_vs_rest.py`` (image AUROC);
* ``cifar-proxy``: CIFAR-10 one-vs-rest with the proxy network of
  ``benchmarks/studies/cifar10_recipe.py`` (``restart``: 64 channels, D=64, 10
  epochs), ``--n-train`` training images per class, all test images
  (image AUROC; ``--data-dir`` an image folder);
* ``mtd``: the Magnetic Tile Defect split of ``examples/magnetic_tile.py``
  with the network of ``benchmarks/studies/postprocessing.py --data mtd`` (64 channels,
  M=128, 25 epochs, 128 px); image AUROC for every setting, and the pooled
  pixel AUROC, AUPRO and per-image pixel AUROC of each map (pooling does
  not change a map) (``--data-dir`` the folder holding ``MT_Free``, ...).

    python benchmarks/studies/pooling_bank.py --data digits --out benchmarks/results/pooling_bank_digits_cpu
    python benchmarks/studies/pooling_bank.py --data mtd --data-dir mtd \\
        --out benchmarks/results/pooling_bank_mtd_cpu
    python benchmarks/studies/pooling_bank.py --data cifar-proxy --data-dir cifar10-jpg \\
        --out benchmarks/results/pooling_bank_cifar_proxy_cpu

Results go to ``<out>.json`` and ``<out>.md``, rewritten after each network
so that a stopped run keeps what it finished.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from skvqad import VQVAEAnomalyDetector
from skvqad.datasets import load_folder_with_masks, load_image_folder
from skvqad.metrics import pixel_report
from skvqad.utils import environment

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from magnetic_tile import DEFECTS, split  # noqa: E402

# _common lives in benchmarks/, beside the speed benchmarks.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import add_device_argument, command_line, versions_text  # noqa: E402

POOLINGS = ("mean", "max", 0.9, 0.99, 0.999)
MAPS = [("ssim", "squared")] + [(m, a) for m in ("am", "ssim+am")
                                for a in ("squared", "relative", "bank")]


def map_name(score_map, alignment):
    return score_map if score_map == "ssim" else f"{score_map}/{alignment}"


def settings() -> dict:
    return {f"{map_name(m, a)}/{p}": {"score_map": m, "alignment": a, "score_pooling": p}
            for m, a in MAPS for p in POOLINGS}


def digits_units(args):
    digits = load_digits()
    X = (digits.images / 16.0).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(
        X, digits.target, test_size=0.5, stratify=digits.target, random_state=0)
    params = dict(n_embeddings=64, embedding_dim=32, hidden_channels=64, n_downsampling=1,
                  ssim_window=3, dilation_radius=1, max_epochs=args.max_epochs or 150,
                  batch_size=32)
    for digit in range(10):
        yield str(digit), params, X_train[y_train == digit], X_test, y_test == digit, None


def cifar_units(args):
    train = load_image_folder(args.data_dir, split="train", color_mode="rgb")
    test = load_image_folder(args.data_dir, split="test", color_mode="rgb")
    params = dict(hidden_channels=64, embedding_dim=64, n_residual_layers=2, n_embeddings=512,
                  max_epochs=args.max_epochs or 10)
    for k, name in enumerate(train.target_names):
        X = train.images[train.target == k]
        X = X[np.random.default_rng(0).permutation(len(X))[: args.n_train]]
        yield name, params, X, test.images, test.target == k, None


def mtd_units(args):
    root = Path(args.data_dir)
    data = load_folder_with_masks(root / "MT_Free" / "Imgs", [root / d / "Imgs" for d in DEFECTS],
                                  image_size=128)
    train, test = split(data)
    params = dict(hidden_channels=64, embedding_dim=64, n_embeddings=128,
                  max_epochs=args.max_epochs or 25, batch_size=32)
    pixels = (data.masks[test], np.asarray(data.defect_types)[test])
    yield "mtd", params, data.images[train], data.images[test], ~data.anomalous[test], pixels


def summary(rows):
    """Mean image AUROC over the units, per map and pooling."""
    lines = ["| map | " + " | ".join(str(p) for p in POOLINGS) + " |",
             "|---|" + "---|" * len(POOLINGS)]
    for m, a in MAPS:
        name = map_name(m, a)
        lines.append(f"| {name} | " + " | ".join(
            f"{np.mean([r['auroc'][f'{name}/{p}'] for r in rows]):.3f}" for p in POOLINGS) + " |")
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", choices=["digits", "cifar-proxy", "mtd"], required=True)
    p.add_argument("--data-dir", help="image folder (cifar-proxy) or MTD root (mtd)")
    p.add_argument("--n-train", type=int, default=2500, help="cifar-proxy: training images per class")
    p.add_argument("--max-epochs", type=int, help="default: the data set's (150, 10, 25)")
    p.add_argument("--bank-size", type=int, default=10000)
    p.add_argument("--units", nargs="+", help="only these classes/digits")
    add_device_argument(p)
    p.add_argument("--out", required=True, help="path without extension for .json and .md")
    args = p.parse_args(argv)
    if args.data != "digits" and not args.data_dir:
        p.error(f"--data {args.data} needs --data-dir")

    units = {"digits": digits_units, "cifar-proxy": cifar_units, "mtd": mtd_units}[args.data]
    command = command_line(__file__, argv)
    out, rows = Path(args.out), []
    for name, params, X_train, X_test, normal, pixels in units(args):
        if args.units and name not in args.units:
            continue
        det = VQVAEAnomalyDetector(**params, bank_size=args.bank_size, device=args.device,
                                   random_state=0)
        t0 = time.perf_counter()
        det.fit(X_train)
        row = {"unit": name, "n_train": len(X_train), "fit_seconds": time.perf_counter() - t0,
               "bank": len(det.bank_), "params": params}
        t0 = time.perf_counter()
        scores = det.score_samples_multi(X_test, settings())
        row["score_seconds"] = time.perf_counter() - t0
        row["auroc"] = {k: float(roc_auc_score(normal, s)) for k, s in scores.items()}
        if pixels is not None:
            masks, groups = pixels
            row["pixel"] = {}
            for m, a in MAPS:
                maps = det.set_params(score_map=m, alignment=a).anomaly_map(X_test)
                report = pixel_report(masks, maps, groups=groups)
                row["pixel"][map_name(m, a)] = {
                    "all": report["all"],
                    "pixel_auroc_by_type": {g: r["pixel_auroc"] for g, r in report.items()
                                            if g != "all"}}
        rows.append(row)
        best = max(row["auroc"], key=row["auroc"].get)
        print(f"{name}: best {best} {row['auroc'][best]:.3f}; ssim+am/squared/mean "
              f"{row['auroc']['ssim+am/squared/mean']:.3f} ({row['fit_seconds']:.0f} s fit)",
              flush=True)

        env = environment(det.net_.device)
        lines = [f"# Pooling and the bank AM: {args.data}", "", f"Command: `{command}`  ",
                 f"Device: {env['device']}; "
                 + versions_text(env["versions"]) + ".  ",
                 f"Networks: {json.dumps(params)}, bank_size={args.bank_size}, random_state=0; "
                 f"{len(rows)} unit(s) run: {', '.join(r['unit'] for r in rows)}.", "",
                 "## Image AUROC, mean over the units, per map (columns: score_pooling)", ""]
        lines += summary(rows)
        if pixels is not None:
            lines += ["", "## Pixel metrics of each map (pooling does not change a map)", "",
                      "| map | pooled pixel AUROC | AUPRO | per-image pixel AUROC |",
                      "|---|---|---|---|"]
            for m, a in MAPS:
                rep = rows[-1]["pixel"][map_name(m, a)]["all"]
                lines.append(f"| {map_name(m, a)} | {rep['pixel_auroc']:.3f} | {rep['aupro']:.3f} "
                             f"| {rep['per_image_pixel_auroc']:.3f} |")
        out.with_suffix(".json").write_text(json.dumps(
            {"command": command, "rows": rows, **env}, indent=1) + "\n")
        out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(summary(rows)))


if __name__ == "__main__":
    main()

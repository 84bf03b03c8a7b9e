"""CIFAR-10 one-vs-rest: the paper's Table III
============================================

The protocol of Section III-D of Gangloff et al. (2022): for each class, a
VQ-VAE is trained on the 5,000 training images of that class only; all
10,000 test images are scored, and the image AUROC is computed with the
class as normal and the nine others as anomalous. One network per class; the
SSIM, AM and SSIM+AM columns are read from the same network (``score_map``
changes no weights), with the paper's squared AM and with the relative AM
(``alignment="relative"``, the AM divided by the encoder output's squared
norm), which the CPU recipe search found better at 32 px
(``benchmarks/results/cifar10_recipe_bottleneck_cpu.md``).

Data: ``--data-dir`` points at an image folder with ``train/<class>/*.jpg``
and ``test/<class>/*.jpg`` (any CIFAR-10 export, such as a JPEG copy);
without it the official ``cifar-10-python.tar.gz`` is downloaded once by
:func:`skvqad.datasets.fetch_cifar10`.

Beside the VQ-VAE's columns stand three baselines that a user would try first,
fitted on the same training images of the same run with scikit-learn alone
(:func:`skvqad.baselines.pixel_baselines`): the distance to the 5th nearest
training image in pixel space, the PCA reconstruction error (95 % of the
variance) and an IsolationForest on the pixels.

``--rows-dir`` makes a long run resumable: each class's row is written there
as soon as the class is done, classes already there are skipped (if they were
run with the same settings), and the table is made from every row in the
folder. Beside each row, ``<class>.scores.npz`` keeps every column's image
scores and the ``normal`` mask of the test images, so that other combinations
of the scores can be evaluated later without retraining (e.g.
``roc_auc_score(f["normal"], f["ssim"])``), and the detector's columns on the
class's training images (``f["train_ssim"]``, ...), on which such a
combination would be calibrated (``benchmarks/studies/cifar10_score_fusion.py`` and
``benchmarks/studies/cifar10_score_contrast.py`` read them). The paper's protocol at
the paper's network size takes most of an hour per class on 2 CPU cores, so
run it in the background::

    nohup python examples/cifar10_one_vs_rest.py --data-dir cifar10-jpg --max-epochs 20 \
        --rows-dir results/cifar10_rows --json results/cifar10.json \
        --markdown results/cifar10.md > cifar10.log 2>&1 &

Beyond the paper, the same networks give the code prior's columns: ``prior``
(how rarely the training images chose each code at its latent position)
and the fused scores
``z(am,prior)``, ``z(ssim+am,prior)`` and ``z(ssim,am,prior)``: the highest
of the maps' scores standardised on the class's training images (a tuple
``score_map``); the columns ending in ``-d0`` are the AM, the prior and their
fusions with undilated maps (``dilation_radius=0``, calibrated by
``refit_threshold`` on the training images). ``z(am,prior)-d0`` is the
setting recommended for natural scenes. Each row keeps the detector's
``score_calibration_`` (and ``score_calibration_d0``).

``--quick`` trains small networks on 500 images per class for a few epochs
and scores 2,000 test images: a smoke test for 2 CPU cores in a few minutes,
**not** the paper's protocol, and labelled so in its output. ``--proxy`` trains
a smaller network (64 channels, D = 64, M = 512) for 10 epochs on all 5,000
training images of each class and scores all 10,000 test images: the
paper's protocol with a network small enough for a CPU (about 40 minutes for
the ten classes on 2 cores), labelled as a proxy.

``--model-dir`` keeps each class's fitted detector (``<class>.skvqad``) and
loads it instead of training when it is there, so that other scoring
settings cost no retraining (``benchmarks/studies/prior_study.py`` reads them); each
class's training state is written there after each epoch
(``<class>.checkpoint/``), so a class stopped mid-training resumes after its
last completed epoch.

Examples::

    python examples/cifar10_one_vs_rest.py --quick --data-dir cifar10-jpg
    python examples/cifar10_one_vs_rest.py --data-dir cifar10-jpg --device cuda --json results.json

``--n-embeddings`` and ``--dilation-radius`` change the detector's
settings, e.g.::

    python examples/cifar10_one_vs_rest.py --data-dir cifar10-jpg --device cuda --dilation-radius 0

``--mixed-precision`` sets the detector's bfloat16 autocast (``auto``, its
default, uses it on CUDA and on CPUs with native bfloat16) and
``--random-state`` the seed, e.g. to compare the two precisions against the
noise between seeds::

    python examples/cifar10_one_vs_rest.py --quick --data-dir cifar10-jpg --mixed-precision true
    python examples/cifar10_one_vs_rest.py --quick --data-dir cifar10-jpg --random-state 1

Each row records whether its network trained in bfloat16; ``--rows-dir``
refuses to resume in the other precision, and the table says which it is.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from skvqad import VQVAEAnomalyDetector
from skvqad.baselines import pixel_baselines
from skvqad.datasets import fetch_cifar10, load_image_folder
from skvqad.detector import SCORING_PARAMS
from skvqad.model import VQVAE
from skvqad.net import VQVAENet, resolve_device
from skvqad.utils import environment

#: Table III of the paper: AE L2, DSVDD, VQ-VAE SSIM, VQ-VAE SSIM+AM.
PAPER = {
    "airplane": (0.59, 0.62, 0.71, 0.69),
    "automobile": (0.57, 0.66, 0.63, 0.65),
    "bird": (0.49, 0.51, 0.63, 0.65),
    "cat": (0.58, 0.59, 0.62, 0.63),
    "deer": (0.54, 0.61, 0.60, 0.64),
    "dog": (0.62, 0.66, 0.67, 0.67),
    "frog": (0.51, 0.68, 0.61, 0.63),
    "horse": (0.59, 0.67, 0.63, 0.63),
    "ship": (0.77, 0.76, 0.74, 0.74),
    "truck": (0.67, 0.73, 0.64, 0.65),
}
PAPER_MEAN = (0.59, 0.65, 0.65, 0.66)
#: Result key -> scoring setting; all are read from one pass of the same network.
SCORES = {"ssim": {"score_map": "ssim"}, "ssim+am": {"score_map": "ssim+am"},
          "am": {"score_map": "am"},
          "ssim+am-rel": {"score_map": "ssim+am", "alignment": "relative"},
          "am-rel": {"score_map": "am", "alignment": "relative"},
          # Beyond the paper: the code prior, and fusions calibrated on the training images.
          "prior": {"score_map": "prior"},
          "z(am,prior)": {"score_map": ("am", "prior")},
          "z(ssim+am,prior)": {"score_map": ("ssim+am", "prior")},
          "z(ssim,am,prior)": {"score_map": ("ssim", "am", "prior")}}
#: The same maps undilated (dilation_radius=0), as the prior was first measured on CIFAR-10;
#: z(am,prior)-d0 is the setting chosen, before this table was run, for natural scenes.
UNDILATED = {"am-d0": {"score_map": "am"}, "prior-d0": {"score_map": "prior"},
             "z(am,prior)-d0": {"score_map": ("am", "prior")},
             "z(ssim+am,prior)-d0": {"score_map": ("ssim+am", "prior")},
             "z(ssim,am,prior)-d0": {"score_map": ("ssim", "am", "prior")}}
BASELINES = ("knn", "pca", "iforest")
COLUMNS = {"ssim": "SSIM", "ssim+am": "SSIM+AM", "am": "AM", "ssim+am-rel": "SSIM+AM, rel. AM",
           "am-rel": "rel. AM", "prior": "prior",
           "z(am,prior)": "z(AM, prior)", "z(ssim+am,prior)": "z(SSIM+AM, prior)",
           "z(ssim,am,prior)": "z(SSIM, AM, prior)", "am-d0": "AM d0", "prior-d0": "prior d0",
           "z(am,prior)-d0": "z(AM, prior) d0", "z(ssim+am,prior)-d0": "z(SSIM+AM, prior) d0",
           "z(ssim,am,prior)-d0": "z(SSIM, AM, prior) d0",
           "knn": "kNN pixels", "pca": "PCA error", "iforest": "IForest"}
#: The proxy configuration (--proxy): the paper's protocol with a network a CPU trains in minutes.
PROXY = dict(hidden_channels=64, embedding_dim=64, n_embeddings=512, max_epochs=10)


def load(data_dir):
    """uint8 (n, 32, 32, 3) train/test images, integer labels and class names."""
    if data_dir is None:
        data = fetch_cifar10()
        return data.X_train, data.y_train, data.X_test, data.y_test, list(data.target_names)
    train = load_image_folder(data_dir, split="train", color_mode="rgb")
    test = load_image_folder(data_dir, split="test", color_mode="rgb")
    if list(train.target_names) != list(test.target_names):
        raise ValueError("train and test hold different classes")
    return train.images, train.target, test.images, test.target, list(train.target_names)


def make_detector(args):
    if args.proxy:
        return VQVAEAnomalyDetector(**dict(PROXY, max_epochs=args.max_epochs or PROXY["max_epochs"]),
                                    codebook_restart=args.codebook_restart, device=args.device,
                                    random_state=args.random_state)
    if args.quick:
        return VQVAEAnomalyDetector(
            hidden_channels=64, embedding_dim=64, n_embeddings=128, n_residual_layers=2,
            max_epochs=args.max_epochs or 5, batch_size=128, codebook_restart=args.codebook_restart,
            device=args.device, random_state=args.random_state)
    return VQVAEAnomalyDetector(max_epochs=args.max_epochs or 40,
                                codebook_restart=args.codebook_restart, device=args.device,
                                random_state=args.random_state)


def run_class(detector, name, train, X_test, normal, train_scores=False, model=None):
    """One row: the detector's columns and the three baselines on the same split.

    Returns the row (the AUROCs, times, ...) and each column's image scores; with
    ``train_scores``, also the detector's columns on the training images, under
    ``train_<column>`` (what a fusion of the columns would calibrate on; the
    prior's columns there count each image's own codes, unlike the calibration
    that ``fit`` measures, kept in the row's ``score_calibration``). With
    ``model``, the fitted detector is kept in that file, or loaded from it if
    it exists (its fit time is then the one saved beside it).
    """
    t0 = time.perf_counter()
    if model is not None and model.exists():
        detector = load_model(detector, model)
        fit_seconds = json.loads(model.with_suffix(".json").read_text())["fit_seconds"]
    else:
        # A class stopped mid-training resumes after its last completed epoch.
        detector.set_params(checkpoint_dir=None if model is None else model.with_suffix(".checkpoint"))
        detector.fit(train)
        fit_seconds = time.perf_counter() - t0
        if model is not None:
            detector.save(model)
            write(model.with_suffix(".json"), json.dumps({"fit_seconds": fit_seconds}))
    row = {"class": name, "n_train": len(train), "n_test": len(X_test),
           "fit_seconds": fit_seconds,
           "codes_used": int(detector.history_[-1, "codes_used"]),
           "bf16": bool(detector.net_.bf16_enabled),
           "score_calibration": detector.score_calibration_,
           **environment(detector.net_.device)}
    t0 = time.perf_counter()
    scores = detector.score_samples_multi(X_test, SCORES)
    on_train = detector.score_samples_multi(train, SCORES) if train_scores else {}
    # The maps undilated: refit_threshold on the training images calibrates the fused
    # scores as fit would with dilation_radius=0 (no retraining).
    radius = detector.dilation_radius
    detector.set_params(dilation_radius=0).refit_threshold(train)
    row["score_calibration_d0"] = detector.score_calibration_
    scores.update(detector.score_samples_multi(X_test, UNDILATED))
    if train_scores:
        on_train.update(detector.score_samples_multi(train, UNDILATED))
    detector.set_params(dilation_radius=radius)
    row["score_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for key, model in pixel_baselines(random_state=0).items():
        scores[key] = model.fit(train).score_samples(X_test)
    row["baseline_seconds"] = time.perf_counter() - t0
    for key, values in scores.items():
        row[key] = roc_auc_score(normal, values)
    scores.update({f"train_{key}": values for key, values in on_train.items()})
    return row, scores


def load_model(template, path):
    """The detector kept in ``path``, refused if trained with other parameters than ``template``."""
    detector = VQVAEAnomalyDetector.load(path, device=template.device)
    saved, asked = detector.get_params(), template.get_params()
    differ = {k: (v, saved[k]) for k, v in asked.items()
              if k not in (*SCORING_PARAMS, "device", "verbose", "checkpoint_dir") and saved[k] != v}
    if differ:
        raise SystemExit(f"{path} was trained with other parameters than asked (asked, saved): "
                         f"{differ}. Remove it, or ask for the same.")
    return detector.set_params(**{k: asked[k] for k in SCORING_PARAMS})


def write(path, text=None, **arrays):
    """Write ``text``, or ``arrays`` as a compressed ``.npz``, to ``path`` atomically.

    A stopped run never leaves half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp" + path.suffix)  # np.savez keeps an .npz name
    if arrays:
        np.savez_compressed(tmp, **arrays)
    else:
        tmp.write_text(text)
    os.replace(tmp, path)


def table(rows, label, env, seconds):
    keys = list(COLUMNS)
    lines = [f"Image AUROC, CIFAR-10 one class normal vs the nine others. {label}.", "",
             "| class | AE L2 (paper) | DSVDD (paper) | VQ-VAE SSIM (paper) | VQ-VAE SSIM+AM (paper) | "
             + " | ".join(COLUMNS.values()) + " | fit (s) |",
             "|---" * (6 + len(keys)) + "|"]
    for row in rows:
        paper = PAPER.get(row["class"], (float("nan"),) * 4)
        lines.append(f"| {row['class']} | " + " | ".join(f"{v:.2f}" for v in paper) + " | "
                     + " | ".join(f"{row[k]:.3f}" if k in row else "-" for k in keys)
                     + f" | {row['fit_seconds']:.0f} |")
    # Rows made before a column existed lack it: its mean is over the rows that have it.
    means = {k: float(np.mean([r[k] for r in rows if k in r])) for k in keys
             if any(k in r for r in rows)}
    paper_mean = PAPER_MEAN if len(rows) == 10 else tuple(
        np.mean([PAPER[r["class"]][i] for r in rows if r["class"] in PAPER]) for i in range(4))
    lines.append(f"| **mean ({len(rows)})** | " + " | ".join(f"{v:.2f}" for v in paper_mean) + " | "
                 + " | ".join(f"**{means[k]:.3f}**" if k in means else "-" for k in keys) + " | |")
    partial = [f"{COLUMNS[k]} ({sum(k in r for r in rows)})" for k in means
               if not all(k in r for r in rows)]
    if partial:
        lines.append("Rows made before a column existed show '-'; the means of "
                     + ", ".join(partial) + " are over the rows that have them.")
    # main() keeps one precision per table; rows from before the "bf16" key trained in float32.
    precision = "bfloat16 autocast" if rows[0].get("bf16", False) else "float32"
    lines += ["", f"{seconds:.0f} s of VQ-VAE training and scoring in all on {env['device']}, "
              f"training in {precision}; "
              + ", ".join(f"{k} {v}" for k, v in env["versions"].items())]
    # A row may say how long its run was stopped (e.g. SIGSTOP to free the cores).
    paused = [f"{r['class']} {r['paused_seconds']:.0f} s" for r in rows if r.get("paused_seconds")]
    if paused:
        lines.append("The fit times are wall times; they include the time the run was paused: "
                     + ", ".join(paused) + ".")
    # ... or that other jobs shared the cores while it ran.
    shared = [r["class"] for r in rows if r.get("cores_shared_note")]
    if shared:
        lines.append("Other jobs shared the cores during part of the fits of "
                     + ", ".join(shared) + " (their rows say how long).")
    return lines, means


def main(argv=None):
    parser = argparse.ArgumentParser(description="CIFAR-10 one-vs-rest image AUROC (Table III)")
    parser.add_argument("--data-dir", help="image folder with train/<class>/ and test/<class>/")
    parser.add_argument("--classes", nargs="+", help="class names to run (default: all ten)")
    parser.add_argument("--quick", action="store_true",
                        help="small subset and model for CPUs; NOT the paper's protocol")
    parser.add_argument("--proxy", action="store_true",
                        help="the paper's protocol with a smaller network (64 channels, D=64, "
                        "M=512, 10 epochs)")
    parser.add_argument("--model-dir", help="keep each class's fitted detector here, and reuse it")
    parser.add_argument("--max-epochs", type=int)
    parser.add_argument("--codebook-restart", action=argparse.BooleanOptionalAction, default=True,
                        help="re-draw unused codes (the default); --no-codebook-restart trains "
                        "as the paper does")
    parser.add_argument("--n-embeddings", type=int, help="codebook size M (default: the detector's)")
    parser.add_argument("--dilation-radius", type=int, help="AM dilation (default: the detector's)")
    parser.add_argument("--mixed-precision", choices=["auto", "true", "false"],
                        help="bfloat16 autocast (default: the detector's, \"auto\")")
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--markdown", help="write the table to this markdown file")
    parser.add_argument("--rows-dir", help="write each class's row here as it finishes; "
                        "skip the classes already there")
    args = parser.parse_args(argv)

    X_train, y_train, X_test, y_test, names = load(args.data_dir)
    classes = args.classes or names
    unknown = sorted(set(classes) - set(names))
    if unknown:
        parser.error(f"unknown classes {unknown}; available: {names}")
    if args.quick:
        rng = np.random.default_rng(0)
        keep = np.concatenate([rng.permutation(np.flatnonzero(y_test == k))[:200]
                               for k in range(len(names))])
        X_test, y_test = X_test[keep], y_test[keep]

    detector = make_detector(args)
    precision = {None: None, "auto": "auto", "true": True, "false": False}[args.mixed_precision]
    overrides = {"n_embeddings": args.n_embeddings, "dilation_radius": args.dilation_radius,
                 "mixed_precision": precision}
    detector.set_params(**{k: v for k, v in overrides.items() if v is not None})
    params = {k: v for k, v in detector.get_params().items()
              if isinstance(v, (int, float, str, type(None)))}
    # What mixed_precision resolves to here ("auto": bfloat16 on CUDA and on CPUs that have it).
    bf16 = VQVAENet(VQVAE, device=resolve_device(args.device),
                    bf16=detector.mixed_precision).bf16_enabled
    if args.quick and args.proxy:
        parser.error("--quick and --proxy are two configurations: choose one")
    label = ("QUICK RUN: 500 training images per class, small network, 2,000 test images; "
             "not the paper's protocol" if args.quick else
             "PROXY: the paper's protocol (5,000 training images per class, all 10,000 test "
             "images) with a smaller network (64 channels, D=64, M=512)" if args.proxy else
             "Paper protocol: 5,000 training images per class, all 10,000 test images")
    model_dir = Path(args.model_dir) if args.model_dir else None
    if model_dir is not None:
        model_dir.mkdir(parents=True, exist_ok=True)
    rows_dir = Path(args.rows_dir) if args.rows_dir else None
    rows = []
    for name in classes:
        path = rows_dir / f"{name}.json" if rows_dir else None
        if path is not None and path.exists():
            row = json.loads(path.read_text())
            # A parameter the row does not name (added to the detector since) must be at
            # its default: the row was run with what that default does.
            # mixed_precision counts by what it resolves to ("auto" is bf16 on some machines
            # only), checked below.
            defaults = VQVAEAnomalyDetector().get_params()
            differ = sorted(k for k in set(row["params"]) | set(params)
                            if k != "mixed_precision"
                            and row["params"].get(k, defaults.get(k)) != params.get(k))
            if differ or row["label"] != label:
                parser.error(f"{path} was run with other settings ({differ or 'label'}); "
                             "use another --rows-dir")
            # Rows from before the "bf16" key were trained in float32.
            if row.get("bf16", False) != bf16:
                precisions = ("float32", "bfloat16")
                was = row.get("bf16", False)
                parser.error(f"{path} was trained in {precisions[was]}, this run would train in "
                             f"{precisions[bf16]}: pass --mixed-precision {str(was).lower()} to "
                             "go on in its precision, or use another --rows-dir")
            rows.append(row)
            print(f"{name}: done before, in {path}", flush=True)
            continue
        k = names.index(name)
        train = X_train[y_train == k]
        if args.quick:
            train = train[np.random.default_rng(k).permutation(len(train))[:500]]
        model = model_dir / f"{name}.skvqad" if model_dir else None
        row, scores = run_class(detector, name, train, X_test, y_test == k,
                                train_scores=path is not None, model=model)
        row.update(params=params, label=label)
        rows.append(row)
        if path is not None:
            # The scores first: a row on disk always has its scores beside it.
            write(path.with_suffix(".scores.npz"), normal=y_test == k,
                  **{key: np.asarray(v, dtype=np.float32) for key, v in scores.items()})
            write(path, json.dumps(row, indent=2))
        print(f"{name}: " + "  ".join(f"{key} {row[key]:.3f}" for key in COLUMNS if key in row)
              + f"  ({row['fit_seconds']:.0f} s fit, {row['codes_used']} codes used)", flush=True)

    seconds = sum(r["fit_seconds"] + r["score_seconds"] + r.get("train_score_seconds", 0)
                  for r in rows)
    env = {"device": rows[-1]["device"], "versions": rows[-1]["versions"]}
    lines, means = table(rows, label, env, seconds)
    command = "python examples/cifar10_one_vs_rest.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    print("\n" + "\n".join(lines))
    if args.markdown:
        write(args.markdown, "\n".join(lines[:1] + ["", f"Produced by `{command}`.", ""] + lines[1:])
              + "\n")
    if args.json:
        write(args.json, json.dumps({"label": label, "rows": rows, "mean": means,
                                     "seconds": seconds, "device": env["device"], "params": params,
                                     "versions": env["versions"], "command": command}, indent=2))


if __name__ == "__main__":
    main()

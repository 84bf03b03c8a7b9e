"""Do SSIM and the AM fused per image beat either alone? (issue #12)

On the CIFAR-10 paper protocol, the SSIM score and the alignment-map (AM)
score fail on different classes: SSIM is the better score on automobile, cat
and dog, the AM on bird and deer, and the paper's product map (SSIM+AM)
follows the AM. This script measures, without retraining, whether a fusion
that neither score dominates does better. It reads the image scores that
``examples/cifar10_one_vs_rest.py --rows-dir`` keeps beside each row
(``<class>.scores.npz``) and computes the image AUROC of

- each score alone (the baseline in the same run: the same images, the same
  networks), and
- the mean and the minimum of SSIM and the AM (squared or relative), each
  first put on a common scale. Every score is oriented as ``score_samples``
  is, higher is more normal; the minimum calls an image as anomalous as its
  more anomalous score says.

The common scales:

``rank``
    the rank among the test images. **Transductive**: it shows whether fusing
    is worth building, not what a deployed detector would score.
``cdf``
    the fraction of the class's training images that score lower or the same
    (the empirical distribution function of the training scores).
``z``
    the score standardized by the training scores' mean and standard
    deviation.

``cdf`` and ``z`` use the training images only, as a deployed detector could;
they need the training scores (``train_<column>`` in the file), which rows
run before the example kept them lack; those rows get ``rank`` only (the
table shows which).
The training images are the ones the network was fitted on, so their scores
are more normal than those of unseen normal images.

Command (no network runs; a second or two)::

    python benchmarks/cifar10_score_fusion.py \\
        --rows-dir benchmarks/results/cifar10_paper_cpu_rows \\
        --out benchmarks/results/cifar10_score_fusion_cpu
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from _common import command_line, versions_text, write_results

#: Result key -> label of the single scores read from the files.
SINGLE = {"ssim": "SSIM", "am": "AM", "am-rel": "rel. AM", "ssim+am": "SSIM+AM (product map)",
          "ssim+am-rel": "SSIM+AM, rel. AM", "knn": "kNN pixels"}
SCALES = ("rank", "cdf", "z")
PAIRS = (("ssim", "am"), ("ssim", "am-rel"))
#: Result key -> (scale, how the scaled scores are combined, the two scores).
FUSIONS = {f"{scale}-{how}({a},{b})": (scale, how, (a, b))
           for scale in SCALES for how in ("mean", "min") for a, b in PAIRS}


def scaled(scores, key, scale):
    """``scores[key]`` on a common scale, from the test images (``rank``) or the training
    images' scores ``scores["train_" + key]`` (``cdf``, ``z``).

    Ranks and distribution values are whole counts, so that equal sums stay equal when
    they are combined (dividing by n first would break such ties by rounding).
    """
    x = scores[key]
    if scale == "rank":
        return rankdata(x)
    train = scores[f"train_{key}"]
    if scale == "cdf":
        return np.searchsorted(np.sort(train), x, side="right").astype(np.float64)
    return (x - train.mean()) / train.std()


def fuse(scores, scale, how, keys):
    """The per-image mean or minimum of ``scores[k]`` on ``scale``, for ``k`` in ``keys``."""
    values = np.stack([scaled(scores, k, scale) for k in keys])
    return values.mean(axis=0) if how == "mean" else values.min(axis=0)


def class_row(path):
    """The AUROC of every single score and fusion of one ``<class>.scores.npz``."""
    with np.load(path) as f:
        needed = {"normal", *SINGLE, *(k for pair in PAIRS for k in pair)}
        missing = sorted(needed - set(f.files))
        if missing:
            raise ValueError(f"{path} has no {', '.join(missing)}; it was not written by "
                             "examples/cifar10_one_vs_rest.py --rows-dir")
        scores = {k: np.asarray(f[k], dtype=np.float64) for k in f.files}
    normal = scores.pop("normal").astype(bool)
    row = {"class": path.name.removesuffix(".scores.npz"), "n_test": int(normal.size),
           "n_normal": int(normal.sum()), "train_scores": "train_ssim" in scores}
    row.update({k: float(roc_auc_score(normal, scores[k])) for k in SINGLE})
    for key, (scale, how, keys) in FUSIONS.items():
        if scale == "rank" or all(f"train_{k}" in scores for k in keys):
            row[key] = float(roc_auc_score(normal, fuse(scores, scale, how, keys)))
    return row


def label(key):
    if key in SINGLE:
        return SINGLE[key]
    scale, how, (a, b) = FUSIONS[key]
    return f"{how} of {SINGLE[a]}, {SINGLE[b]} as {scale}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows-dir", required=True,
                        help="the --rows-dir of examples/cifar10_one_vs_rest.py")
    parser.add_argument("--out", required=True, help="path without extension for .json and .md")
    args = parser.parse_args(argv)

    rows_dir = Path(args.rows_dir)
    paths = sorted(rows_dir.glob("*.scores.npz"))
    if not paths:
        raise SystemExit(f"no <class>.scores.npz in {rows_dir}: run examples/cifar10_one_vs_rest.py "
                         "with --rows-dir first")
    rows = [class_row(p) for p in paths]
    # The device and versions of the runs that made the scores (the fusion itself is NumPy).
    made_by = {}
    for row in rows:
        meta = rows_dir / f"{row['class']}.json"
        if meta.exists():
            made = json.loads(meta.read_text())
            made_by[row["class"]] = {"device": made.get("device"), "versions": made.get("versions")}
    keys = [*SINGLE, *FUSIONS]
    # Each key's mean over the classes that have it, and every key's mean over the classes
    # with training scores (those that all the fusions have), to compare like with like.
    calibrated = [r for r in rows if r["train_scores"]]
    means = {k: float(np.mean([r[k] for r in rows if k in r])) for k in keys
             if any(k in r for r in rows)}
    means_calibrated = {k: float(np.mean([r[k] for r in calibrated])) for k in keys
                        if calibrated}
    command = command_line(__file__, argv)
    result = {"command": command, "rows": rows, "means": means,
              "means_classes_with_train_scores": means_calibrated, "scores_made_by": made_by}

    names = [r["class"] for r in rows]
    lines = [f"Image AUROC on CIFAR-10 one-vs-rest, from the image scores in `{rows_dir}`: "
             "each score alone, and the mean / minimum of SSIM and the AM put on a common "
             "scale: `rank` among the test images (transductive: whether fusing is worth "
             "building), `cdf` and `z` from the training images' scores (deployable; only "
             "for classes whose file keeps them).", "",
             "| score | " + " | ".join(names) + f" | mean (classes) | mean ({len(calibrated)} "
             "with training scores) |",
             "|---" * (len(names) + 3) + "|"]
    for key in keys:
        n = sum(key in r for r in rows)
        cells = [f"{r[key]:.3f}" if key in r else "–" for r in rows]
        cells.append(f"**{means[key]:.3f}** ({n})" if n else "–")
        cells.append(f"{means_calibrated[key]:.3f}" if calibrated else "–")
        lines.append(f"| {label(key)} | " + " | ".join(cells) + " |")
    made = {(m["device"], versions_text(m["versions"] or {})) for m in made_by.values()}
    origin = "; ".join(f"{d}, {v}" for d, v in sorted(made)) or "an unrecorded device"
    lines += ["", f"Produced by `{command}` (NumPy, scipy and scikit-learn only); the scores "
              f"were made on {origin}."]
    write_results(args.out, result, lines)
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()

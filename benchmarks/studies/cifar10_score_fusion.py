"""Do SSIM and the AM fused per image beat either alone? (issue #12)

On the CIFAR-10 paper protocol, the SSIM score and the alignment-map (AM)
score fail on different classes: SSIM is the better score on automobile, cat
and dog, the AM on bird and deer, and the paper's product map (SSIM+AM)
follows the AM. This script measures, without retraining, whether a fusion
in which neither score outweighs the other does better. It reads the image
scores that ``examples/cifar10_one_vs_rest.py --rows-dir`` keeps beside each
row (``<class>.scores.npz``) and computes the image AUROC of

- each score alone (the baseline in the same run: the same images, the same
  networks), and
- the mean and the minimum of SSIM and the AM (squared or relative), each
  first put on a common scale. Every score is oriented as ``score_samples``
  is, higher is more normal; the minimum calls an image as anomalous as its
  more anomalous score says (on anomaly scores: the maximum).

The common scales:

``rank``
    the rank among the test images. **Transductive**: it shows whether fusing
    is worth building, not what a deployed detector would score.
``ecdf``
    the number of the class's training images that score lower or the same
    (the training scores' empirical distribution function, times their
    number, which is the same for every column). A test image below every
    training image gets 0, whatever its margin; the table gives the share of
    test images at 0, where this scale cannot tell them apart.
``z``
    the score standardized by the training scores' mean and standard
    deviation.

``ecdf`` and ``z`` use the training images only, as a deployed detector
could; they need the training scores (``train_<column>`` in the file), which
rows run before the example kept them lack; those rows get ``rank`` only (the
table shows which). The training images are the ones the network was fitted
on, so their scores are more normal than those of unseen normal images.
Rows with no scores file at all (run before the example kept one) are named
in the output and left out.

Command (no network runs; a second or two)::

    python benchmarks/studies/cifar10_score_fusion.py \\
        --rows-dir benchmarks/results/cifar10_paper_cpu_rows \\
        --out benchmarks/results/cifar10_score_fusion_cpu
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

# _common lives in benchmarks/, beside the speed benchmarks.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import command_line, score_files, scores_made_on, write_results  # noqa: E402

#: Result key -> label of the single scores read from the files.
SINGLE = {"ssim": "SSIM", "am": "AM", "am-rel": "rel. AM", "ssim+am": "SSIM+AM (product map)",
          "ssim+am-rel": "SSIM+AM, rel. AM", "knn": "kNN pixels"}
#: Scale -> its label in the table.
SCALES = {"rank": "test ranks (transductive)", "ecdf": "training ECDF", "z": "training z-score"}
PAIRS = (("ssim", "am"), ("ssim", "am-rel"))
#: Result key -> (scale, how the scaled scores are combined, the two scores).
FUSIONS = {f"{scale}-{how}({a},{b})": (scale, how, (a, b))
           for scale in SCALES for how in ("mean", "min") for a, b in PAIRS}


def scaled(scores, key, scale):
    """``scores[key]`` on a common scale, from the test images (``rank``) or the training
    images' scores ``scores["train_" + key]`` (``ecdf``, ``z``).

    Ranks and ECDF values are whole counts, so that equal sums stay equal when they are
    combined (dividing by n first would break such ties by rounding).
    """
    x = scores[key]
    if scale == "rank":
        return rankdata(x)
    train = scores[f"train_{key}"]
    if scale == "ecdf":
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
    fused = {k for pair in PAIRS for k in pair}
    row = {"class": path.name.removesuffix(".scores.npz"), "n_test": int(normal.size),
           "n_normal": int(normal.sum()),
           "has_train_scores": all(f"train_{k}" in scores for k in fused)}
    row.update({k: float(roc_auc_score(normal, scores[k])) for k in SINGLE})
    for key, (scale, how, keys) in FUSIONS.items():
        if scale == "rank" or row["has_train_scores"]:
            row[key] = float(roc_auc_score(normal, fuse(scores, scale, how, keys)))
    if row["has_train_scores"]:
        # The share of test images that score below every training image (ECDF 0).
        row["below_training"] = {k: float(np.mean(scores[k] < scores[f"train_{k}"].min()))
                                 for k in sorted(fused)}
    return row


def label(key):
    if key in SINGLE:
        return SINGLE[key]
    scale, how, (a, b) = FUSIONS[key]
    return f"{how} of {SINGLE[a]}, {SINGLE[b]} on {SCALES[scale]}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows-dir", required=True,
                        help="the --rows-dir of examples/cifar10_one_vs_rest.py")
    parser.add_argument("--out", required=True, help="path without extension for .json and .md")
    args = parser.parse_args(argv)

    rows_dir = Path(args.rows_dir)
    rows = [class_row(p) for p in score_files(rows_dir)]
    names = [r["class"] for r in rows]
    without_scores = sorted(p.stem for p in rows_dir.glob("*.json") if p.stem not in names)
    # The device and versions of the runs that made the scores (the fusion itself is NumPy).
    made_by, origin = scores_made_on(rows_dir, names)
    keys = [*SINGLE, *FUSIONS]
    # Each key's mean over the classes that have it, and every key's mean over the classes
    # with training scores (those that all the fusions have), to compare like with like.
    calibrated = [r for r in rows if r["has_train_scores"]]
    means = {k: float(np.mean([r[k] for r in rows if k in r])) for k in keys
             if any(k in r for r in rows)}
    means_calibrated = {k: float(np.mean([r[k] for r in calibrated])) for k in keys
                        if calibrated}
    command = command_line(__file__, argv)
    result = {"command": command, "rows": rows, "means": means,
              "means_classes_with_train_scores": means_calibrated,
              "rows_without_scores": without_scores, "scores_made_by": made_by}

    header = [*names, "mean (classes)"] + (
        [f"mean over the {len(calibrated)} with training scores"] if calibrated else [])
    lines = [f"Image AUROC on CIFAR-10 one-vs-rest, from the image scores in `{rows_dir}`: "
             "each score alone, and the mean / minimum of SSIM and the AM put on a common "
             "scale: their ranks among the test images (transductive: whether fusing is "
             "worth building), or their training ECDF or z-score (from the training images' "
             "scores: deployable; only for classes whose file keeps them).", "",
             "| score | " + " | ".join(header) + " |", "|---" * (len(header) + 1) + "|"]
    for key in keys:
        n = sum(key in r for r in rows)
        cells = [f"{r[key]:.3f}" if key in r else "–" for r in rows]
        cells.append(f"{means[key]:.3f} ({n})" if n else "–")
        if calibrated:
            cells.append(f"{means_calibrated[key]:.3f}")
        lines.append(f"| {label(key)} | " + " | ".join(cells) + " |")
    lines.append("")
    if calibrated:
        lines.append("Share of test images below every training image (ECDF 0): " + "; ".join(
            f"{r['class']} " + ", ".join(f"{SINGLE[k]} {v:.1%}" for k, v in
                                         r["below_training"].items()) for r in calibrated) + ".")
    if without_scores:
        lines.append("Rows without a scores file, left out: " + ", ".join(without_scores) + ".")
    lines.append(f"Produced by `{command}` (NumPy, scipy and scikit-learn only); the scores "
                 f"were made on {origin}.")
    write_results(args.out, result, lines)
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()

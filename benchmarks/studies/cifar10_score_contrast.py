"""Do the CIFAR-10 scores follow image contrast rather than the class? (issue #12)

On the CIFAR-10 paper protocol, the SSIM score ranks the normal class below
the nine others on deer and frog (AUROC < 0.5), where the paper reports 0.60
and 0.61. This script measures one explanation without retraining: that a
score follows the image's contrast (the standard deviation of its
intensities in [0, 1]), so that a class of low-contrast images looks
anomalous. It reads the image scores that
``examples/cifar10_one_vs_rest.py --rows-dir`` keeps beside each row
(``<class>.scores.npz``) and the same CIFAR-10 image folder, and reports per
class:

- the mean contrast of the normal class and of the nine others, and the
  AUROC of the contrast alone taken as a normality score (the baseline in
  the same run: what contrast by itself separates);
- Spearman's correlation of SSIM, AM and relative AM with the contrast over
  the test images;
- where the file keeps the training images' scores (``train_<column>``), the
  AUROC of each score with its linear dependence on contrast removed:
  ``score - (a + b * contrast)``, with ``a`` and ``b`` fitted by least squares
  on the training images only (deployable), beside the score itself.

Command (no network runs; reading the images takes about a minute)::

    python benchmarks/studies/cifar10_score_contrast.py --data-dir cifar10-jpg \\
        --rows-dir benchmarks/results/cifar10_paper_cpu_rows \\
        --out benchmarks/results/cifar10_score_contrast_cpu
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from skvqad.datasets import load_image_folder

# _common lives in benchmarks/, beside the speed benchmarks.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import command_line, score_files, scores_made_on, write_results  # noqa: E402

#: Result key -> label of the scores examined.
SCORES = {"ssim": "SSIM", "am": "AM", "am-rel": "rel. AM"}


def contrast(images):
    """The standard deviation of each uint8 image's intensities, scaled to [0, 1]."""
    return images.reshape(len(images), -1).std(axis=1) / 255.0


def adjusted(score, c, train_score, train_c):
    """``score`` minus its least-squares line in the contrast ``c``, fitted on the training images."""
    slope, intercept = np.polyfit(train_c, train_score, deg=1)
    return score - (intercept + slope * c)


def class_row(path, test_c, target, names, train_c):
    """One class's figures from its ``<class>.scores.npz``; ``train_c`` is the contrast of the
    class's training images."""
    name = path.name.removesuffix(".scores.npz")
    with np.load(path) as f:
        scores = {k: np.asarray(f[k], dtype=np.float64) for k in f.files}
    missing = sorted({"normal", *SCORES} - set(scores))
    if missing:
        raise ValueError(f"{path} has no {', '.join(missing)}; it was not written by "
                         "examples/cifar10_one_vs_rest.py --rows-dir")
    normal = scores["normal"].astype(bool)
    if name not in names or not np.array_equal(normal, target == names.index(name)):
        raise ValueError(f"{path} was scored on other test images than those of --data-dir "
                         "(their number, order or classes differ)")
    row = {"class": name, "contrast_normal": float(test_c[normal].mean()),
           "contrast_rest": float(test_c[~normal].mean()),
           "contrast_auroc": float(roc_auc_score(normal, test_c))}
    for key in SCORES:
        row[key] = float(roc_auc_score(normal, scores[key]))
        row[f"spearman_{key}"] = float(spearmanr(scores[key], test_c)[0])
        train = scores.get(f"train_{key}")
        if train is not None:
            if len(train) != len(train_c):
                raise ValueError(f"{path} has {len(train)} training scores, --data-dir "
                                 f"{len(train_c)} training images of {name}")
            row[f"{key}_adjusted"] = float(roc_auc_score(
                normal, adjusted(scores[key], test_c, train, train_c)))
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True,
                        help="the CIFAR-10 image folder the run read (train/<class>/, test/<class>/)")
    parser.add_argument("--rows-dir", required=True,
                        help="the --rows-dir of examples/cifar10_one_vs_rest.py")
    parser.add_argument("--out", required=True, help="path without extension for .json and .md")
    args = parser.parse_args(argv)

    rows_dir = Path(args.rows_dir)
    paths = score_files(rows_dir)
    test = load_image_folder(args.data_dir, split="test", color_mode="rgb")
    names, test_c = list(test.target_names), contrast(test.images)
    train = load_image_folder(args.data_dir, split="train", color_mode="rgb")
    train_c = {name: contrast(train.images[train.target == k]) for k, name in enumerate(names)}
    rows = [class_row(p, test_c, test.target, names, train_c.get(p.name.removesuffix(
        ".scores.npz"))) for p in paths]
    made_by, origin = scores_made_on(rows_dir, [r["class"] for r in rows])
    command = command_line(__file__, argv)
    result = {"command": command, "rows": rows, "scores_made_by": made_by}

    cols = [("contrast normal / rest", lambda r: f"{r['contrast_normal']:.3f} / "
             f"{r['contrast_rest']:.3f}"),
            ("AUROC of contrast", lambda r: f"{r['contrast_auroc']:.3f}")]
    cols += [(f"ρ({label}, contrast)", lambda r, k=k: f"{r[f'spearman_{k}']:+.2f}")
             for k, label in SCORES.items()]
    for k, label in SCORES.items():
        cols += [(label, lambda r, k=k: f"{r[k]:.3f}"),
                 (f"{label} minus its contrast line", lambda r, k=k:
                  f"{r[f'{k}_adjusted']:.3f}" if f"{k}_adjusted" in r else "–")]
    lines = ["Image AUROC on CIFAR-10 one-vs-rest and image contrast (the standard deviation "
             "of an image's intensities in [0, 1]): Spearman's ρ of each score with contrast "
             "over the test images, and each score minus its least-squares line in contrast "
             "fitted on the class's training images (for classes whose scores file keeps "
             "them).", "",
             "| class | " + " | ".join(c for c, _ in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    lines += [f"| {r['class']} | " + " | ".join(f(r) for _, f in cols) + " |" for r in rows]
    lines += ["", f"Produced by `{command}` (NumPy, scipy and scikit-learn only); the scores "
              f"were made on {origin}."]
    write_results(args.out, result, lines)
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()

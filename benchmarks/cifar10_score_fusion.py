"""Do SSIM and the AM fused by rank beat either alone? (issue #12)

On the CIFAR-10 paper protocol, the SSIM score and the alignment-map (AM)
score fail on different classes: SSIM is the better score on automobile, cat
and dog, the AM on bird and deer, and the paper's product map (SSIM+AM)
follows the AM. This script measures, without retraining, whether a fusion
that neither score dominates does better: it reads the image scores that
``examples/cifar10_one_vs_rest.py --rows-dir`` keeps beside each row
(``<class>.scores.npz``) and computes the image AUROC of

- each score alone (the baseline in the same run: the same images, the same
  networks), and
- the mean and the minimum of the per-image ranks of SSIM and the AM (squared
  or relative). Every score is oriented as ``score_samples`` is, higher is
  more normal; the minimum calls an image as anomalous as its more anomalous
  score says.

The ranks are taken over the test images, which is **transductive**: it shows
whether fusing is worth building, not what a deployed detector would score. A
deployable fusion would map each score through its distribution over the
training images instead, which the score files do not keep.

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
#: Result key -> (how the ranks are combined, the two scores).
FUSIONS = {
    "rank-mean(ssim,am)": ("mean", ("ssim", "am")),
    "rank-mean(ssim,am-rel)": ("mean", ("ssim", "am-rel")),
    "rank-min(ssim,am)": ("min", ("ssim", "am")),
    "rank-min(ssim,am-rel)": ("min", ("ssim", "am-rel")),
}


def fuse(scores, how, keys):
    """The per-image fusion of the ranks of ``scores[k]`` for ``k`` in ``keys``.

    The ranks are combined before any division, so that equal sums of ranks stay equal
    (dividing each rank by n first breaks such ties by rounding).
    """
    ranks = np.stack([rankdata(scores[k]) for k in keys])
    return ranks.mean(axis=0) if how == "mean" else ranks.min(axis=0)


def class_row(path):
    """The AUROC of every single score and fusion of one ``<class>.scores.npz``."""
    with np.load(path) as f:
        needed = {"normal", *SINGLE, *(k for _, keys in FUSIONS.values() for k in keys)}
        missing = sorted(needed - set(f.files))
        if missing:
            raise ValueError(f"{path} has no {', '.join(missing)}; it was not written by "
                             "examples/cifar10_one_vs_rest.py --rows-dir")
        scores = {k: np.asarray(f[k], dtype=np.float64) for k in f.files}
    normal = scores.pop("normal").astype(bool)
    row = {"class": path.name.removesuffix(".scores.npz"), "n_test": int(normal.size),
           "n_normal": int(normal.sum())}
    row.update({k: float(roc_auc_score(normal, scores[k])) for k in SINGLE})
    row.update({k: float(roc_auc_score(normal, fuse(scores, how, keys)))
                for k, (how, keys) in FUSIONS.items()})
    return row


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
    means = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    command = command_line(__file__, argv)
    result = {"command": command, "rows": rows, "means": means, "scores_made_by": made_by,
              "transductive": True}

    lines = [f"Image AUROC on CIFAR-10 one-vs-rest, from the image scores in `{rows_dir}`: each "
             "score alone, and the mean / minimum of the per-image ranks of SSIM and the AM. "
             "The ranks are over the test images (transductive: whether fusing is worth "
             "building, not a deployed score).", "",
             "| class | " + " | ".join([*SINGLE.values(), *FUSIONS]) + " |",
             "|---" * (1 + len(keys)) + "|"]
    for row in rows:
        lines.append(f"| {row['class']} | " + " | ".join(f"{row[k]:.3f}" for k in keys) + " |")
    lines.append(f"| **mean ({len(rows)})** | " + " | ".join(f"**{means[k]:.3f}**" for k in keys)
                 + " |")
    made = {(m["device"], versions_text(m["versions"] or {})) for m in made_by.values()}
    origin = "; ".join(f"{d}, {v}" for d, v in sorted(made)) or "an unrecorded device"
    lines += ["", f"Produced by `{command}` (NumPy, scipy and scikit-learn only); the scores "
              f"were made on {origin}."]
    write_results(args.out, result, lines)
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()

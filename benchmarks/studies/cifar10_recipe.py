"""CIFAR-10 one-vs-rest: the recipe search of issue #3.

For each training configuration (``--configs``) and each class, one VQ-VAE is
trained on that class's training images; the test images are passed through
it once, and every scoring variant below is computed from the same outputs,
so the scoring comparisons never mix networks:

* ``l2``: mean squared reconstruction error (an AE-L2-like reference);
* ``ssim/w{5,7,11}/{mean,max,gray}``: ``1 - SSIM`` with a Gaussian window of
  that side (sigma ``0.15 (w - 1)``, 1.5 at 11), per-channel maps averaged,
  the worst channel, or SSIM of the luminance images;
* ``am/d{0,2}``: the upsampled alignment map, grey-dilated with radius d;
* ``ssim+am/w{7,11}/d{0,1,2,4}``: their product (channel mean);
* ``am-rel/d{0,2}`` and ``ssim+am-rel/w11/d{0,2}``: the same with the
  alignment map divided by ``||z_e||^2`` at each position (not the paper's:
  it tests whether the AM mostly measures the contrast of the image);
* ``ssim-c/w11/mean``, ``ssim-c+am/w11/d{0,2}`` and
  ``ssim-c+am-rel/w11/d{0,2}``: SSIM with the constants
  as the paper's text writes them, ``c1 = 0.01`` and ``c2 = 0.03``, instead
  of Wang et al.'s ``(0.01 L)^2`` and ``(0.03 L)^2``;
* each map reduced to an image score by its ``mean`` (the paper). (Runs
  before the public one-pass API also scored the mean of each map's top 10 %
  pixels, ``top10``: ``benchmarks/results/cifar10_recipe_*cpu.md`` hold them.)

Every map-based score comes from one pass of the network through
:meth:`~skvqad.VQVAEAnomalyDetector.score_samples_multi`; ``l2`` and the
luminance SSIM, which no scoring parameter expresses, from one pass of
``reconstruct``.

Training configurations (the smaller proxy network when ``--proxy``):

* ``base``: the paper's training (``codebook_restart=False``: codebook
  uniform in ``[-1/M, 1/M]``);
* ``restart``: + :class:`skvqad.net.CodebookRestart` (codebook drawn from the
  first batch's encoder outputs, unused codes re-drawn each epoch);
* ``lr3e-4``: ``base`` with a learning rate of 3e-4;
* ``long``: ``restart`` with twice the epochs;
* ``restart-lr3e-4``, ``restart-bs32``: ``restart`` with a learning rate of
  3e-4, or batches of 32 images (four times the steps per epoch);
* ``restart-m128``, ``restart-m64``, ``restart-m32``, ``restart-m16``,
  ``restart-down3``: tighter bottlenecks, ``restart`` with 128 to 16 codes,
  or with a third downsampling (a 4x4 latent grid at 32 px).

    python benchmarks/studies/cifar10_recipe.py --data-dir cifar10-jpg --proxy \
        --out benchmarks/results/cifar10_recipe_cpu

Results go to ``<out>.json`` (every AUROC) and ``<out>.md`` (the summary),
rewritten after each class so a stopped run keeps what it finished.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from skvqad import VQVAEAnomalyDetector
from skvqad.datasets import load_image_folder
from skvqad.maps import ssim
from skvqad.utils import environment

# _common lives in benchmarks/, beside the speed benchmarks.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import add_device_argument, command_line, versions_text  # noqa: E402

PAPER_SSIM_AM = {"airplane": 0.69, "automobile": 0.65, "bird": 0.65, "cat": 0.63, "deer": 0.64,
                 "dog": 0.67, "frog": 0.63, "horse": 0.63, "ship": 0.74, "truck": 0.65}
LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


def load(data_dir, cache):
    if cache and Path(cache).exists():
        d = np.load(cache, allow_pickle=False)
        return d["X_train"], d["y_train"], d["X_test"], d["y_test"], list(d["names"])
    train = load_image_folder(data_dir, split="train", color_mode="rgb")
    test = load_image_folder(data_dir, split="test", color_mode="rgb")
    out = (train.images, train.target, test.images, test.target, list(train.target_names))
    if cache:
        np.savez(cache, X_train=out[0], y_train=out[1], X_test=out[2], y_test=out[3],
                 names=np.array(out[4]))
    return out


def configs(proxy: bool, epochs: int | None):
    size = (dict(hidden_channels=64, embedding_dim=64, n_residual_layers=2) if proxy else {})
    e = epochs or (10 if proxy else 40)
    base = dict(size, n_embeddings=512, max_epochs=e, lr=1e-3, codebook_restart=False)
    return {
        "base": base,
        "restart": dict(base, codebook_restart=True),
        "lr3e-4": dict(base, lr=3e-4),
        "long": dict(base, codebook_restart=True, max_epochs=2 * e),
        "restart-lr3e-4": dict(base, codebook_restart=True, lr=3e-4),
        "restart-bs32": dict(base, codebook_restart=True, batch_size=32),
        "restart-m128": dict(base, codebook_restart=True, n_embeddings=128),
        "restart-m64": dict(base, codebook_restart=True, n_embeddings=64),
        "restart-m32": dict(base, codebook_restart=True, n_embeddings=32),
        "restart-m16": dict(base, codebook_restart=True, n_embeddings=16),
        "restart-down3": dict(base, codebook_restart=True, n_downsampling=3),
    }


def sigma_of(window: int) -> float:
    return 0.15 * (window - 1)


def settings() -> dict:
    """Every map-based scoring variant, as scoring parameters of the detector."""
    c = {"ssim_constants": (0.01, 0.03)}
    out = {}
    for w in (5, 7, 11):
        ssim_w = {"score_map": "ssim", "ssim_window": w, "ssim_sigma": sigma_of(w)}
        out[f"ssim/w{w}/mean"] = ssim_w
        out[f"ssim/w{w}/max"] = dict(ssim_w, channel_reduction="max")
    out["ssim-c/w11/mean"] = dict(score_map="ssim", **c)
    for d in (0, 2):
        out[f"am/d{d}"] = {"score_map": "am", "dilation_radius": d}
        out[f"am-rel/d{d}"] = {"score_map": "am", "alignment": "relative", "dilation_radius": d}
        out[f"ssim+am-rel/w11/d{d}"] = {"alignment": "relative", "dilation_radius": d}
        out[f"ssim-c+am/w11/d{d}"] = dict(dilation_radius=d, **c)
        out[f"ssim-c+am-rel/w11/d{d}"] = dict(alignment="relative", dilation_radius=d, **c)
    for w in (7, 11):
        for d in (0, 1, 2, 4):
            out[f"ssim+am/w{w}/d{d}"] = {"ssim_window": w, "ssim_sigma": sigma_of(w),
                                         "dilation_radius": d}
    return {f"{name}/mean": dict({"score_map": "ssim+am"}, **setting)
            for name, setting in out.items()}


def variants(det, X, chunk=1000):
    """Image scores of every scoring variant, higher = more anomalous."""
    scores = {k: -v for k, v in det.score_samples_multi(X, settings()).items()}
    x_hat = torch.from_numpy(det.reconstruct(X))
    l2, gray = [], {w: [] for w in (5, 7, 11)}
    for s in range(0, len(X), chunk):
        xb = torch.from_numpy(X[s:s + chunk].astype(np.float32) / 255).permute(0, 3, 1, 2)
        hb = x_hat[s:s + chunk].permute(0, 3, 1, 2)
        l2.append((xb - hb).pow(2).mean((1, 2, 3)).double().numpy())
        for w in (5, 7, 11):
            sm = 1 - ssim((xb * LUMA).sum(1, keepdim=True), (hb * LUMA).sum(1, keepdim=True),
                          window_size=w, sigma=sigma_of(w))
            gray[w].append(sm.double().mean((1, 2, 3)).numpy())
    scores["l2/mean"] = np.concatenate(l2)
    for w in (5, 7, 11):
        scores[f"ssim/w{w}/gray/mean"] = np.concatenate(gray[w])
    return scores


def write(rows, path, meta):
    path.with_suffix(".json").write_text(json.dumps(dict(meta, rows=rows), indent=1))
    by_cfg: dict[str, list] = {}
    for r in rows:
        by_cfg.setdefault(r["config"], []).append(r)
    keys = sorted(set().union(*(r["auroc"] for r in rows)))
    lines = [f"# CIFAR-10 recipe search ({meta['label']})", "",
             f"Command: `{meta['command']}`  ", f"Device: {meta['device']}; "
             + versions_text(meta["versions"]) + ".  ",
             meta["setup"], "",
             "## Mean image AUROC over the classes run, per training configuration and score", "",
             "| score | " + " | ".join(f"{c} ({len(v)} cl.)" for c, v in by_cfg.items()) + " |",
             "|---|" + "---|" * len(by_cfg)]
    for k in keys:
        lines.append(f"| {k} | " + " | ".join(  # "-": a merged run without that score
            f"{np.mean([r['auroc'][k] for r in v]):.3f}" if all(k in r["auroc"] for r in v)
            else "-" for v in by_cfg.values()) + " |")
    lines += ["", "## Per class: SSIM (w11, mean), AM (d2), SSIM+AM (w11, d2), SSIM+AM with the "
              "relative AM (w11, d0), codes used", "",
              "| config | class | SSIM | AM | SSIM+AM | SSIM+AM rel. d0 | paper SSIM+AM "
              "| codes used | fit s |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a = r["auroc"]
        lines.append(f"| {r['config']} | {r['class']} | {a['ssim/w11/mean/mean']:.3f} | "
                     f"{a['am/d2/mean']:.3f} | {a['ssim+am/w11/d2/mean']:.3f} | "
                     f"{a.get('ssim+am-rel/w11/d0/mean', float('nan')):.3f} | "
                     f"{PAPER_SSIM_AM.get(r['class'], float('nan')):.2f} | {r['codes_used']} | "
                     f"{r['fit_seconds']:.0f} |")
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--cache", help="npz file to keep the decoded images in between runs")
    p.add_argument("--classes", nargs="+")
    p.add_argument("--configs", nargs="+", default=["base", "restart", "lr3e-4", "long"])
    p.add_argument("--proxy", action="store_true",
                   help="64 channels, D=64, 2 residual blocks, 10 epochs: for CPUs")
    p.add_argument("--n-train", type=int, help="training images per class (default: all)")
    p.add_argument("--max-epochs", type=int)
    p.add_argument("--seed", type=int, default=0,
                   help="random_state of the networks (the training subset stays seed 0)")
    add_device_argument(p)
    p.add_argument("--out", required=True, help="path without extension for .json and .md")
    args = p.parse_args(argv)

    X_train, y_train, X_test, y_test, names = load(args.data_dir, args.cache)
    classes = args.classes or names
    cfgs = configs(args.proxy, args.max_epochs)
    rows, out = [], Path(args.out)
    meta = None
    for cfg_name in args.configs:
        params = cfgs[cfg_name]
        for name in classes:
            k = names.index(name)
            train = X_train[y_train == k]
            if args.n_train:
                train = train[np.random.default_rng(0).permutation(len(train))[: args.n_train]]
            det = VQVAEAnomalyDetector(**params, device=args.device, random_state=args.seed)
            t0 = time.perf_counter()
            det.fit(train)
            fit_s = time.perf_counter() - t0
            scores = variants(det, X_test)
            auroc = {key: float(roc_auc_score(y_test != k, s)) for key, s in scores.items()}
            rows.append({"config": cfg_name, "class": name, "params": params, "seed": args.seed,
                         "n_train": len(train), "fit_seconds": fit_s,
                         "codes_used": int(det.history_[-1, "codes_used"]), "auroc": auroc})
            print(f"{cfg_name} {name}: SSIM {auroc['ssim/w11/mean/mean']:.3f} "
                  f"AM {auroc['am/d2/mean']:.3f} SSIM+AM {auroc['ssim+am/w11/d2/mean']:.3f} "
                  f"codes {rows[-1]['codes_used']} ({fit_s:.0f} s)", flush=True)
            if meta is None:
                env = environment(det.net_.device)
                label = "proxy network on CPU, not the paper's" if args.proxy else "paper network"
                meta = {"label": label, "device": env["device"], "versions": env["versions"],
                        "command": command_line(__file__, argv),
                        "setup": (f"{len(train)} training images per class, all "
                                  f"{len(X_test)} test images; configurations: "
                                  + json.dumps(cfgs))}
            write(rows, out, meta)


if __name__ == "__main__":
    main()

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
* each map reduced to an image score by its ``mean`` (the paper) and, for the
  paper's columns, the mean of its top 10 % pixels (``top10``).

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

    python benchmarks/cifar10_recipe.py --data-dir cifar10-jpg --proxy --out benchmarks/results/cifar10_recipe_cpu

Results go to ``<out>.json`` (every AUROC) and ``<out>.md`` (the summary),
rewritten after each class so a stopped run keeps what it finished.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from skvqad import VQVAEAnomalyDetector
from skvqad.datasets import load_image_folder
from skvqad.maps import alignment_map, grey_dilation, ssim
from skvqad.model import reconstruction
from skvqad.utils import environment

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


def outputs(detector, X):
    """x, reconstruction, squared and relative alignment maps of every test image (CPU tensors)."""
    xs, xh, ams, rels = [], [], [], []
    for x, out in detector._iter_outputs(X):
        xs.append(x.float().cpu())
        xh.append(reconstruction(out.logits).cpu())
        ams.append(alignment_map(out.z_e, out.e).cpu())
        rels.append(alignment_map(out.z_e, out.e, relative=True).cpu())
    return torch.cat(xs), torch.cat(xh), torch.cat(ams), torch.cat(rels)


def reduce(maps: torch.Tensor) -> dict:
    flat = maps.flatten(1).double()
    k = max(1, int(round(0.1 * flat.shape[1])))
    return {"mean": flat.mean(1).numpy(), "top10": flat.topk(k, dim=1).values.mean(1).numpy()}


def variants(x, x_hat, am, am_rel, factor, chunk=1000):
    """Image scores of every scoring variant, higher = more anomalous."""
    scores: dict[str, list] = {}

    def add(name, maps, top=False):
        r = reduce(maps)
        scores.setdefault(f"{name}/mean", []).append(r["mean"])
        if top:
            scores.setdefault(f"{name}/top10", []).append(r["top10"])

    for s in range(0, len(x), chunk):
        xb, hb, ab = x[s:s + chunk], x_hat[s:s + chunk], am[s:s + chunk]
        rel = am_rel[s:s + chunk]
        add("l2", (xb - hb).pow(2).mean(1))
        sm_mean = {}  # per window, reused by SSIM+AM below
        for w in (5, 7, 11):
            sm = 1 - ssim(xb, hb, window_size=w, sigma=sigma_of(w))
            sm_mean[w] = sm.mean(1)
            add(f"ssim/w{w}/mean", sm_mean[w], top=w == 11)
            add(f"ssim/w{w}/max", sm.amax(1))
            gray = 1 - ssim((xb * LUMA).sum(1, keepdim=True), (hb * LUMA).sum(1, keepdim=True),
                            window_size=w, sigma=sigma_of(w))
            add(f"ssim/w{w}/gray", gray[:, 0])
        # Upsampled and dilated once per radius, shared by every score below.
        up = ab.repeat_interleave(factor, -2).repeat_interleave(factor, -1)
        up_rel = rel.repeat_interleave(factor, -2).repeat_interleave(factor, -1)
        dil = {d: grey_dilation(up, d) for d in (0, 1, 2, 4)}
        dil_rel = {d: grey_dilation(up_rel, d) for d in (0, 2)}
        # The constants as the paper's text states them, c1 = 0.01 and c2 = 0.03.
        sm_c = (1 - ssim(xb, hb, constants=(0.01, 0.03))).mean(1)
        add("ssim-c/w11/mean", sm_c)
        for d in (0, 2):
            add(f"am/d{d}", dil[d], top=d == 2)
            add(f"am-rel/d{d}", dil_rel[d])
            add(f"ssim+am-rel/w11/d{d}", sm_mean[11] * dil_rel[d])
            add(f"ssim-c+am/w11/d{d}", sm_c * dil[d])
            add(f"ssim-c+am-rel/w11/d{d}", sm_c * dil_rel[d])
        for w in (7, 11):
            for d in (0, 1, 2, 4):
                add(f"ssim+am/w{w}/d{d}", sm_mean[w] * dil[d], top=(w, d) == (11, 2))
    return {k: np.concatenate(v) for k, v in scores.items()}


def write(rows, path, meta):
    path.with_suffix(".json").write_text(json.dumps(dict(meta, rows=rows), indent=1))
    by_cfg: dict[str, list] = {}
    for r in rows:
        by_cfg.setdefault(r["config"], []).append(r)
    keys = sorted(set().union(*(r["auroc"] for r in rows)))
    lines = [f"# CIFAR-10 recipe search ({meta['label']})", "",
             f"Command: `{meta['command']}`  ", f"Device: {meta['device']}; "
             + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".  ",
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
    p.add_argument("--device", default="auto")
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
            x, x_hat, am, am_rel = outputs(det, X_test)
            scores = variants(x, x_hat, am, am_rel, 2 ** det.n_downsampling_)
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
                        "command": "python benchmarks/cifar10_recipe.py " + " ".join(
                            argv if argv is not None else __import__("sys").argv[1:]),
                        "setup": (f"{len(train)} training images per class, all "
                                  f"{len(X_test)} test images; configurations: "
                                  + json.dumps(cfgs))}
            write(rows, out, meta)


if __name__ == "__main__":
    main()

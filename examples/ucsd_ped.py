"""UCSD Ped1 and Ped2: pixel AUROC of moving-object anomalies (the paper's Table II)
=================================================================================

The protocol of Section III-C of Gangloff et al. (2022): frames resized to
128 x 128, a VQ-VAE with 2 downsamplings (32 x 32 latent grid) trained on the
training sequences, and a grey dilation applied to the SSIM map as well
(``ssim_dilation_radius``), which the paper found much better on this set.
The pooled pixel AUROC is computed on the test frames of the sequences that
come with pixel masks, and printed next to Table II.

Beside the paper's two maps, the row gives the code prior's (beyond the
paper; :ref:`code_prior`): the prior map with its counts pooled over each
latent position's 3 x 3 neighbourhood (``prior_radius=1``) and the fused
``("ssim+am", "prior")`` score, all read from the same network; and for
each map the AUPRO and the frame-level AUROC (a frame is anomalous when its
mask is not empty; its score is the mean of its map). The last column is a
pixel baseline fitted on the same frames in the same run: the squared error
of each pixel's PCA reconstruction (:func:`skvqad.baselines.pca_residual_maps`).

Table II is Ped1's; ``--subset ped2`` runs the same protocol on Ped2, whose
row has no paper columns. Copies of either in circulation load as they are
(frames re-encoded as ``.jpg``/``.png``, masks named ``frameNNN.bmp``; see
:func:`skvqad.datasets.load_ucsd_ped`).

Run with the folder that holds ``UCSDped1/`` (or ``UCSDped2/``)::

    python examples/ucsd_ped.py --root path/to/UCSD_Anomaly_Dataset.v1p2 --out results/ucsd
    python examples/ucsd_ped.py --root path/to/UCSD_Anomaly_Dataset.v1p2 --subset ped2 \
        --out results/ucsd_ped2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from skvqad import VQVAEAnomalyDetector
from skvqad.baselines import pca_residual_maps
from skvqad.datasets import load_ucsd_ped
from skvqad.metrics import pixel_report
from skvqad.plotting import plot_anomaly_maps
from skvqad.thresholds import threshold_from_normal
from skvqad.utils import environment

#: The maps scored, all from the same network: the paper's two, then the code prior's.
SETTINGS = {
    "SSIM": {"score_map": "ssim", "prior_radius": 0},
    "SSIM+AM": {"score_map": "ssim+am", "prior_radius": 0},
    "prior r1": {"score_map": "prior", "prior_radius": 1},
    "z(SSIM+AM, prior r1)": {"score_map": ("ssim+am", "prior"), "prior_radius": 1},
}
#: The pixel baseline's column.
BASELINE = "PCA residual (pixels)"
#: Table II: VAE L2, VEVAE, VQ-VAE SSIM, VQ-VAE SSIM+AM (pixel AUROC).
PAPER = {"VAE L2": 0.86, "VEVAE": 0.92, "VQ-VAE SSIM": 0.95, "VQ-VAE SSIM+AM": 0.95}


def main(argv=None):
    parser = argparse.ArgumentParser(description="UCSD Ped1/Ped2 pixel AUROC (Table II)")
    parser.add_argument("--root", required=True)
    parser.add_argument("--subset", default="ped1", choices=["ped1", "ped2"])
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--hidden-channels", type=int, default=256,
                        help="channels of the network, also its code dimension D")
    parser.add_argument("--dilation-radius", type=int, default=4)
    parser.add_argument("--ssim-dilation-radius", type=int, default=4)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--checkpoint-dir", help="resume a stopped training from this folder")
    parser.add_argument("--out", default="ucsd_results")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    data = load_ucsd_ped(args.root, subset=args.subset, image_size=args.image_size)
    has_mask = np.asarray(data.has_mask)
    X_test, masks = data.X_test[has_mask], data.masks[has_mask]
    print(f"{len(data.X_train)} training frames; {len(X_test)} test frames with pixel masks", flush=True)

    detector = VQVAEAnomalyDetector(
        hidden_channels=args.hidden_channels, embedding_dim=args.hidden_channels,
        n_downsampling=2, dilation_radius=args.dilation_radius,
        ssim_dilation_radius=args.ssim_dilation_radius, max_epochs=args.max_epochs,
        batch_size=64, device=args.device, random_state=0, checkpoint_dir=args.checkpoint_dir,
    )
    start = time.perf_counter()
    detector.fit(data.X_train)
    fit_seconds = time.perf_counter() - start

    reports, maps = {}, {}
    for name, setting in SETTINGS.items():
        detector.set_params(**setting)
        if isinstance(setting["score_map"], tuple):  # calibrated under prior_radius=1
            detector.refit_threshold(data.X_train)
        maps[name] = detector.anomaly_map(X_test)
        reports[name] = pixel_report(masks, maps[name])["all"]
    detector.set_params(**SETTINGS["SSIM+AM"])
    start = time.perf_counter()
    baseline = pca_residual_maps(data.X_train, X_test)
    reports[BASELINE] = pixel_report(masks, baseline)["all"]
    baseline_seconds = time.perf_counter() - start

    env = environment(detector.net_.device)
    device_name, versions = env["device"], env["versions"]
    paper = PAPER if args.subset == "ped1" else {}  # Table II has no Ped2 row
    metrics = {"pixel_auroc": "pixel AUROC", "aupro": "AUPRO", "image_auroc": "frame AUROC"}
    table = ["| | " + "".join(f"{k} (paper) | " for k in paper)
             + "".join(f"{k} (ours) | " for k in SETTINGS) + f"{BASELINE} |",
             "|---|" + "---|" * (len(paper) + len(SETTINGS) + 1)]
    for key, label in metrics.items():
        cells = paper.values() if key == "pixel_auroc" else [None] * len(paper)
        table.append(f"| {label}, {args.subset} | "
                     + "".join("- | " if v is None else f"{v:.2f} | " for v in cells)
                     + "".join(f"{reports[k][key]:.3f} | " for k in [*SETTINGS, BASELINE]))
    footer = (f"Training {fit_seconds:.0f} s (the PCA baseline {baseline_seconds:.0f} s) on "
              f"{device_name}; "
              + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print("\n".join(table) + "\n\n" + footer)

    m = maps["SSIM+AM"]
    threshold = threshold_from_normal(m[~masks.reshape(len(m), -1).any(axis=1)], quantile=0.995)
    chosen = np.flatnonzero(masks.reshape(len(m), -1).any(axis=1))[::max(1, len(m) // 24)][:4]
    fig = plot_anomaly_maps(list(X_test[chosen]), list(m[chosen]),
                            reconstructions=list(detector.reconstruct(X_test[chosen])),
                            masks=list(masks[chosen]), threshold=threshold)
    fig.savefig(out / "ucsd.png", dpi=80)
    command = "python examples/ucsd_ped.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    (out / "ucsd.json").write_text(json.dumps(
        {"command": command, "reports": reports, "fit_seconds": fit_seconds,
         "baseline_seconds": baseline_seconds, "device": device_name,
         "versions": versions, "params": {k: v for k, v in detector.get_params().items()
                                          if isinstance(v, (int, float, str, type(None)))}},
        indent=2))
    (out / "ucsd.md").write_text(f"Command: `{command}`\n\n" + "\n".join(table) + f"\n\n{footer}\n")


if __name__ == "__main__":
    main()

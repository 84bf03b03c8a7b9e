"""UCSD Ped1 and Ped2: pixel AUROC of moving-object anomalies (the paper's Table II)
=================================================================================

The protocol of Section III-C of Gangloff et al. (2022): frames resized to
128 x 128, a VQ-VAE with 2 downsamplings (32 x 32 latent grid) trained on the
training sequences, and a grey dilation applied to the SSIM map as well
(``ssim_dilation_radius``), which the paper found much better on this set.
The pooled pixel AUROC is computed on the test frames of the sequences that
come with pixel masks, and printed next to Table II.

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
from skvqad.datasets import load_ucsd_ped
from skvqad.metrics import pixel_report
from skvqad.plotting import plot_anomaly_maps
from skvqad.thresholds import threshold_from_normal
from skvqad.utils import environment

#: Table II: VAE L2, VEVAE, VQ-VAE SSIM, VQ-VAE SSIM+AM (pixel AUROC).
PAPER = {"VAE L2": 0.86, "VEVAE": 0.92, "VQ-VAE SSIM": 0.95, "VQ-VAE SSIM+AM": 0.95}


def main(argv=None):
    parser = argparse.ArgumentParser(description="UCSD Ped1/Ped2 pixel AUROC (Table II)")
    parser.add_argument("--root", required=True)
    parser.add_argument("--subset", default="ped1", choices=["ped1", "ped2"])
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--hidden-channels", type=int, default=256)
    parser.add_argument("--dilation-radius", type=int, default=4)
    parser.add_argument("--ssim-dilation-radius", type=int, default=4)
    parser.add_argument("--device", default="auto")
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
        batch_size=64, device=args.device, random_state=0,
    )
    start = time.perf_counter()
    detector.fit(data.X_train)
    fit_seconds = time.perf_counter() - start

    reports, maps = {}, {}
    for score_map in ("ssim", "ssim+am"):
        maps[score_map] = detector.set_params(score_map=score_map).anomaly_map(X_test)
        reports[score_map] = pixel_report(masks, maps[score_map])["all"]

    env = environment(detector.net_.device)
    device_name, versions = env["device"], env["versions"]
    paper = PAPER if args.subset == "ped1" else {}  # Table II has no Ped2 row
    table = ["| | " + "".join(f"{k} (paper) | " for k in paper)
             + "SSIM (ours) | SSIM+AM (ours) | AUPRO SSIM+AM (ours) |",
             "|---|" + "---|" * (len(paper) + 3),
             f"| pixel AUROC, {args.subset} | " + "".join(f"{v:.2f} | " for v in paper.values())
             + f"{reports['ssim']['pixel_auroc']:.3f} | {reports['ssim+am']['pixel_auroc']:.3f} | "
             f"{reports['ssim+am']['aupro']:.3f} |"]
    footer = (f"Training {fit_seconds:.0f} s on {device_name}; "
              + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print("\n".join(table) + "\n\n" + footer)

    m = maps["ssim+am"]
    threshold = threshold_from_normal(m[~masks.reshape(len(m), -1).any(axis=1)], quantile=0.995)
    chosen = np.flatnonzero(masks.reshape(len(m), -1).any(axis=1))[::max(1, len(m) // 24)][:4]
    fig = plot_anomaly_maps(list(X_test[chosen]), list(m[chosen]),
                            reconstructions=list(detector.reconstruct(X_test[chosen])),
                            masks=list(masks[chosen]), threshold=threshold)
    fig.savefig(out / "ucsd.png", dpi=80)
    command = "python examples/ucsd_ped.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    (out / "ucsd.json").write_text(json.dumps(
        {"command": command, "reports": reports, "fit_seconds": fit_seconds, "device": device_name,
         "versions": versions, "params": {k: v for k, v in detector.get_params().items()
                                          if isinstance(v, (int, float, str, type(None)))}},
        indent=2))
    (out / "ucsd.md").write_text(f"Command: `{command}`\n\n" + "\n".join(table) + f"\n\n{footer}\n")


if __name__ == "__main__":
    main()

"""What ``fit`` spends after training, and what the code prior adds to it.

After training, ``fit`` runs two passes over the training images: an encoder
pass that counts the codes (``code_counts_``) and draws the bank, and a
scoring pass that pools every map (SSIM, AM, SSIM+AM, prior)
for ``score_calibration_`` and ``offset_``. Before the code prior, ``fit``
ran a full forward pass for the bank and a scoring pass of one map for
``offset_``. This benchmark times, on the same fitted detector in the same
process, each of these passes and one training epoch, and reports

    growth = (new passes - old passes) / (epochs x epoch + old passes),

the relative change of the whole fit's time at the configuration's epochs.
Each pass is timed ``--repeats`` times, the passes taking turns (the median
is kept).

Examples::

    python benchmarks/bench_fit_passes.py --device cpu --out benchmarks/results/bench_fit_passes_cpu
    python benchmarks/bench_fit_passes.py --device cpu --small      # CI-sized
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np

from skvqad import VQVAEAnomalyDetector
from skvqad._scoring import latent_statistics
from skvqad.utils import environment

from _common import add_device_argument, command_line, provenance, sync, write_results

#: The CIFAR-10 proxy network (examples/cifar10_one_vs_rest.py --proxy) on 5,000 32-px images.
CONFIG = dict(n_images=5000, size=32, channels=3,
              params=dict(hidden_channels=64, embedding_dim=64, n_embeddings=512, max_epochs=2))
SMALL = dict(n_images=256, size=16, channels=1,
             params=dict(hidden_channels=8, embedding_dim=4, n_embeddings=8, n_residual_layers=1,
                         max_epochs=2))


def timed(functions: dict, device, repeats: int) -> dict:
    """Median seconds of each function, the repeats interleaved (noise hits them alike)."""
    seconds = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            sync(device)
            start = time.perf_counter()
            function()
            sync(device)
            seconds[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in seconds.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="tiny model and data (CI-sized)")
    parser.add_argument("--epochs", type=int, nargs="+", default=[10, 20, 40],
                        help="training lengths at which to report the growth")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="<out>.json and <out>.md")
    add_device_argument(parser)
    args = parser.parse_args(argv)
    cfg = SMALL if args.small else CONFIG
    rng = np.random.default_rng(0)
    shape = (cfg["n_images"], cfg["size"], cfg["size"], cfg["channels"])
    X = rng.integers(0, 256, size=shape, dtype=np.uint8)
    det = VQVAEAnomalyDetector(**cfg["params"], device=args.device, random_state=0).fit(X)
    device = det.net_.device
    epoch = float(np.median(det.history_[:, "dur"]))
    X_valid = det._validate_for_predict(X)

    def full_pass():  # what the old bank pass cost: the whole network, per batch
        for _ in det._scorer().outputs(det._iter_batches(X_valid)):
            pass

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        passes = timed({
            "encoder pass (counts, bank)": lambda: latent_statistics(
                det.net_, det._iter_batches(X_valid), len(X_valid), det.bank_size, 0),
            "calibration pass (every map, offset_)": lambda: det._calibrate(
                X_valid, "auto", training=True),
            "old: full forward pass (bank)": full_pass,
            "old: scoring pass (1 map, offset_)": lambda: det.score_samples(X_valid),
        }, device, args.repeats)
    new = passes["encoder pass (counts, bank)"] + passes["calibration pass (every map, offset_)"]
    old = passes["old: full forward pass (bank)"] + passes["old: scoring pass (1 map, offset_)"]
    growth = {e: (new - old) / (e * epoch + old) for e in args.epochs}
    env = environment(device)
    command = command_line(__file__, argv)
    lines = [f"# fit's passes after training ({cfg['n_images']} images of {cfg['size']} px, "
             f"{cfg['channels']} channel(s); {cfg['params']})", "",
             "| step | seconds | in training epochs |", "|---|---|---|",
             f"| one training epoch (median of {len(det.history_)}) | {epoch:.2f} | 1.00 |"]
    lines += [f"| {name} | {s:.2f} | {s / epoch:.2f} |" for name, s in passes.items()]
    lines += ["", "| epochs | fit time, new / old |", "|---|---|"]
    lines += [f"| {e} | {1 + g:.3f} ({100 * g:+.1f} %) |" for e, g in growth.items()]
    lines += ["", provenance(command, env)]
    print("\n".join(lines))
    if args.out:
        write_results(args.out, {"command": command, "config": cfg, "epoch_seconds": epoch,
                                 "passes": passes, "growth": growth, **env}, lines)


if __name__ == "__main__":
    main()

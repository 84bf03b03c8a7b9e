"""Anomaly-map throughput at 256 px (the MVTec AD setting).

Measures, in the same run and on the same device, images per second of:

* the baseline: the network's forward pass alone, batch by batch over a
  device tensor (what any reconstruction-based detector pays);
* ``VQVAEAnomalyDetector.anomaly_map`` with ``score_map="ssim"`` and
  ``"ssim+am"`` (validation, host-to-device copies, forward pass, maps,
  copy of the maps back to the host);
* the forward pass and the SSIM+AM maps (pooled into scores) from the same
  device tensor as the baseline: the maps' own cost, without the host's
  conversion and copies.

The ratio to the baseline is the cost of everything around the network; the
last row tells the maps' share of it from the host's.

    python benchmarks/bench_maps.py --device cpu --n-images 16 --out benchmarks/results/bench_maps_cpu.json
    python benchmarks/bench_maps.py --device cuda --n-images 1000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from skvqad import VQVAEAnomalyDetector
from skvqad.utils import environment

from _common import add_device_argument, command_line, sync, versions_text, write_results


def timed(fn, device, repeats):
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_device_argument(p)
    p.add_argument("--n-images", type=int, default=256)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out")
    args = p.parse_args(argv)

    rng = np.random.default_rng(0)
    X = (rng.random((args.n_images, args.size, args.size, args.channels)) * 255).astype(np.uint8)
    # The paper's network (256 channels, M = 512, D = 256, 3 downsamplings at
    # 256 px), fitted for one epoch on a few images: the weights do not change
    # the cost of scoring.
    det = VQVAEAnomalyDetector(max_epochs=1, batch_size=args.batch_size, device=args.device,
                               random_state=0).fit(X[:8])
    net, device = det.net_, det.net_.device
    data = torch.from_numpy(np.ascontiguousarray(X.transpose(0, 3, 1, 2))).to(device)

    def forward_only():
        with torch.inference_mode():
            for i in range(0, len(data), args.batch_size):
                net.evaluation_step((data[i : i + args.batch_size].float() / 255, None))

    rates = {"forward pass only (baseline)": args.n_images / timed(forward_only, device, args.repeats)}
    for score_map in ("ssim", "ssim+am"):
        det.set_params(score_map=score_map)
        rates[f"anomaly_map, {score_map}"] = args.n_images / timed(
            lambda: det.anomaly_map(X), device, args.repeats)
    det.set_params(score_map="ssim+am")
    scorer, setting = det._scorer(), det._scoring_params()

    def maps_on_device():
        batches = (data[i : i + args.batch_size].float() / 255
                   for i in range(0, len(data), args.batch_size))
        for _ in scorer.score_batches(batches, [setting]):
            pass

    rates["forward + ssim+am maps on the device (no host I/O)"] = args.n_images / timed(
        maps_on_device, device, args.repeats)
    base = rates["forward pass only (baseline)"]
    env = environment(device)
    command = command_line(__file__, argv)
    table = ["| | images/s | ratio to the forward pass |", "|---|---|---|"] + [
        f"| {k} | {v:.1f} | {v / base:.2f} |" for k, v in rates.items()]
    print("\n".join(table))
    if args.out:
        write_results(args.out, {"command": command, "rates": rates, "config": vars(args),
                                 "mixed_precision": net.bf16_enabled, **env}, [
            f"# Anomaly maps at {args.size} px ({env['device']})", "",
            f"Command: `{command}`  ",
            f"Device: {env['device']}; bf16 autocast {'on' if net.bf16_enabled else 'off'}; "
            + versions_text(env["versions"]) + ".  ",
            f"{args.n_images} random {args.size}x{args.size}x{args.channels} uint8 images, batch "
            f"{args.batch_size}, the paper's network (256 channels, M=512, D=256, 3 downsamplings), "
            f"median of {args.repeats} runs.", "", *table])


if __name__ == "__main__":
    main()

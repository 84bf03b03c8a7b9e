"""Training speed of the paper-sized VQ-VAE in float32 and under bfloat16 autocast.

The figure behind ``mixed_precision="auto"``: bfloat16 pays on CPUs that
multiply it natively (AVX512-BF16, AMX) and costs many times over where torch
emulates it. Both precisions train the same network on the same random
batches in the same process, one after the other, so their ratio is what
counts; the JSON records what torch reports of the CPU.

    python benchmarks/bench_bf16.py --out benchmarks/results/bench_bf16_cpu
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from skvqad.model import VQVAE, VQVAELoss
from skvqad.net import cpu_has_native_bf16
from skvqad.utils import environment

from _common import command_line, provenance, write_results


def images_per_second(bf16: bool, batch_size: int, steps: int, small: bool) -> float:
    torch.manual_seed(0)
    width = 16 if small else 256
    model = VQVAE(in_channels=3, hidden_channels=width, embedding_dim=width,
                  n_embeddings=512, n_downsampling=2, n_residual_layers=3)
    criterion = VQVAELoss(beta=0.25)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(batch_size, 3, 32, 32)
    seconds = []
    for _ in range(steps + 1):  # the first step warms up
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
        loss = criterion(out, x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seconds.append(time.perf_counter() - start)
    return batch_size / statistics.median(seconds[1:])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--small", action="store_true", help="a 16-channel network (for tests)")
    parser.add_argument("--out", help="write <out>.json and <out>.md")
    args = parser.parse_args(argv)

    speed = {name: images_per_second(name == "bf16", args.batch_size, args.steps, args.small)
             for name in ("fp32", "bf16")}
    env = environment("cpu")
    result = {
        "images_per_second": speed, "bf16_over_fp32": speed["bf16"] / speed["fp32"],
        "cpu_has_native_bf16": cpu_has_native_bf16(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "batch_size": args.batch_size, "steps": args.steps, "small": args.small, **env,
        "command": command_line(__file__, argv),
    }
    lines = [
        "Training images/s of the paper-sized VQ-VAE (256 channels, M=512, 32 px RGB), "
        f"batches of {args.batch_size}, median of {args.steps} steps after one warm-up.", "",
        "| float32 | bfloat16 autocast | bf16 / fp32 | native bf16 (torch) | torch CPU capability |",
        "|---|---|---|---|---|",
        f"| {speed['fp32']:.1f} | {speed['bf16']:.1f} | {result['bf16_over_fp32']:.2f} | "
        f"{result['cpu_has_native_bf16']} | {result['cpu_capability']} |", "",
        provenance(result["command"], env),
    ]
    print("\n".join(lines))
    if args.out:
        write_results(args.out, result, lines)


if __name__ == "__main__":
    main()

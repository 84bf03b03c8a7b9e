"""Training and scoring throughput: the estimator against a plain PyTorch loop.

Both sides train the same :class:`skvqad.model.VQVAE` with the same loss,
optimiser, batch size and (on CUDA) bf16 autocast, on the same random
images, in the same process, so the ratio between them is what matters:

(a) ``VQVAEAnomalyDetector.fit`` (skorch, with its history and callbacks);
(b) a minimal loop over a tensor that already lives on the device.

Training throughput is taken from the epochs after the first (warm-up) one:
skorch's per-epoch ``dur`` for (a), a timer around each epoch for (b).
Scoring throughput is ``score_samples`` for (a) and, for (b), a loop of
forward pass + :func:`skvqad.maps.anomaly_map` over a device tensor.

Examples::

    python benchmarks/bench_train.py --device cpu --small          # CI-sized
    python benchmarks/bench_train.py --device cuda                 # paper-sized
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from skvqad import VQVAEAnomalyDetector
from skvqad.maps import alignment_map, anomaly_map
from skvqad.model import VQVAE, VQVAELoss, reconstruction
from skvqad.net import resolve_device
from skvqad.utils import environment

from _common import add_device_argument, command_line, sync, versions_text, write_results


def plain_loop(X, cfg, device):
    """Train with a bare loop; return seconds per epoch after the first."""
    torch.manual_seed(0)
    model = VQVAE(**cfg["module"]).to(device)
    criterion = VQVAELoss(beta=0.25)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    bf16 = device.startswith("cuda")
    data = torch.from_numpy(X).to(device)
    n, bs = len(data), cfg["batch_size"]
    epoch_seconds = []
    model.train()
    for _ in range(cfg["epochs"]):
        sync(device)
        start = time.perf_counter()
        order = torch.randperm(n, device=device)
        for i in range(0, n, bs):
            xb = data[order[i : i + bs]]
            with torch.autocast(device_type=data.device.type, dtype=torch.bfloat16, enabled=bf16):
                out = model(xb)
            loss = criterion(out, xb).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sync(device)
        epoch_seconds.append(time.perf_counter() - start)
    return model, epoch_seconds[1:]


def plain_scoring(model, X, cfg, device):
    """Images/s of forward + SSIM+AM maps + means over a device tensor."""
    bf16 = device.startswith("cuda")
    data = torch.from_numpy(X).to(device)
    model.eval()
    factor = 2 ** cfg["module"]["n_downsampling"]
    sync(device)
    start = time.perf_counter()
    scores = []
    with torch.inference_mode():
        for i in range(0, len(data), cfg["score_batch_size"]):
            xb = data[i : i + cfg["score_batch_size"]]
            with torch.autocast(device_type=data.device.type, dtype=torch.bfloat16, enabled=bf16):
                out = model(xb)
            maps = anomaly_map(xb, reconstruction(out.logits), alignment_map(out.z_e, out.e),
                               factor=factor, dilation_radius=2)
            scores.append(maps.mean(dim=(1, 2)))
        torch.cat(scores).cpu()
    sync(device)
    return len(data) / (time.perf_counter() - start)


def estimator_run(X, cfg, device):
    m = cfg["module"]
    det = VQVAEAnomalyDetector(
        n_embeddings=m["n_embeddings"], embedding_dim=m["embedding_dim"],
        hidden_channels=m["hidden_channels"], n_downsampling=m["n_downsampling"],
        n_residual_layers=m["n_residual_layers"], max_epochs=cfg["epochs"],
        batch_size=cfg["batch_size"], lr=cfg["lr"], device=device, random_state=0,
        codebook_restart=False,  # the plain loop has no restarts: compare like with like
    )
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    det.fit(X)
    train_peak = torch.cuda.max_memory_allocated() if device.startswith("cuda") else None
    epoch_seconds = list(det.history_[1:, "dur"])
    det.set_params(batch_size=cfg["score_batch_size"])
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    sync(device)
    start = time.perf_counter()
    det.score_samples(X)
    sync(device)
    score_ips = len(X) / (time.perf_counter() - start)
    score_peak = torch.cuda.max_memory_allocated() if device.startswith("cuda") else None
    return epoch_seconds, score_ips, train_peak, score_peak


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_device_argument(p)
    p.add_argument("--small", action="store_true", help="tiny model and data (CPU, CI-sized)")
    p.add_argument("--n-images", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", help="JSON file to write (a .md table is written beside it)")
    args = p.parse_args(argv)
    args.device = resolve_device(args.device)

    if args.small:
        cfg = dict(n_images=512, size=32, epochs=3, batch_size=128, score_batch_size=256, lr=1e-3,
                   module=dict(in_channels=3, hidden_channels=32, embedding_dim=32,
                               n_embeddings=64, n_downsampling=2, n_residual_layers=2))
    else:  # the paper's CIFAR-10 setting
        cfg = dict(n_images=5000, size=32, epochs=6, batch_size=128, score_batch_size=1024, lr=1e-3,
                   module=dict(in_channels=3, hidden_channels=256, embedding_dim=256,
                               n_embeddings=512, n_downsampling=2, n_residual_layers=3))
    cfg["n_images"] = args.n_images or cfg["n_images"]
    cfg["epochs"] = args.epochs or cfg["epochs"]
    X = np.random.default_rng(0).random(
        (cfg["n_images"], 3, cfg["size"], cfg["size"]), dtype=np.float32)
    X_channels_last = np.ascontiguousarray(X.transpose(0, 2, 3, 1))

    runs = []
    for _ in range(args.repeats):  # alternate the two so drift hits both
        model, plain_epochs = plain_loop(X, cfg, args.device)
        plain_score = plain_scoring(model, X, cfg, args.device)
        est_epochs, est_score, train_peak, score_peak = estimator_run(X_channels_last, cfg, args.device)
        runs.append(dict(
            plain_train_ips=cfg["n_images"] / statistics.median(plain_epochs),
            estimator_train_ips=cfg["n_images"] / statistics.median(est_epochs),
            plain_score_ips=plain_score, estimator_score_ips=est_score,
            estimator_train_peak_bytes=train_peak, estimator_score_peak_bytes=score_peak,
        ))
    summary = {k: statistics.median(r[k] for r in runs) for k in runs[0] if runs[0][k] is not None}
    # Each run's ratios (the two sides measured back to back), their median and spread.
    for r in runs:
        r["train_ratio"] = r["estimator_train_ips"] / r["plain_train_ips"]
        r["score_ratio"] = r["estimator_score_ips"] / r["plain_score_ips"]
    for key in ("train_ratio", "score_ratio"):
        summary[key] = statistics.median(r[key] for r in runs)
        summary[f"{key}_range"] = [min(r[key] for r in runs), max(r[key] for r in runs)]
    env = environment(args.device)
    device_name = env["device"]
    result = dict(
        command=command_line(__file__, argv),
        device=device_name, config=cfg, runs=runs, summary=summary,
        versions=env["versions"],
    )
    table = [
        "| | plain loop | estimator | ratio |", "|---|---|---|---|",
        f"| training, images/s | {summary['plain_train_ips']:.0f} | "
        f"{summary['estimator_train_ips']:.0f} | {summary['train_ratio']:.2f} "
        "({:.2f}-{:.2f}) |".format(*summary["train_ratio_range"]),
        f"| scoring (SSIM+AM), images/s | {summary['plain_score_ips']:.0f} | "
        f"{summary['estimator_score_ips']:.0f} | {summary['score_ratio']:.2f} "
        "({:.2f}-{:.2f}) |".format(*summary["score_ratio_range"]),
    ]
    if "estimator_train_peak_bytes" in summary:
        table.append(f"| estimator peak GPU memory, train / score | | "
                     f"{summary['estimator_train_peak_bytes'] / 2**20:.0f} MiB / "
                     f"{summary['estimator_score_peak_bytes'] / 2**20:.0f} MiB | |")
    print("\n".join(table))
    if args.out:
        write_results(args.out, result, [
            f"# Training and scoring throughput ({device_name})", "",
            f"Command: `{result['command']}`  ",
            f"Device: {device_name}; {versions_text(result['versions'])}.  ",
            f"{cfg['n_images']} random {cfg['size']}x{cfg['size']} RGB images, batch {cfg['batch_size']}, "
            f"{cfg['epochs']} epochs (first excluded), median of {args.repeats} alternating runs "
            "(the ratios: median of each run's ratio, its range in brackets); "
            f"model {cfg['module']}.", "", *table])


if __name__ == "__main__":
    main()

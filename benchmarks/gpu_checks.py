"""GPU checks that CI cannot run: CUDA training, bf16, CUDA -> CPU loading.

Run on a machine with CUDA (``--device cpu`` runs the same steps on the CPU
to test the script itself). Exits non-zero when a check fails; prints and
writes a JSON summary.

    python benchmarks/gpu_checks.py --out gpu_checks.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from skvqad import VQVAEAnomalyDetector
from skvqad.net import cpu_has_native_bf16
from skvqad.utils import environment

from _common import add_device_argument


def main(argv=None):
    p = argparse.ArgumentParser()
    add_device_argument(p, default="cuda")
    p.add_argument("--out")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    X = (rng.random((512, 32, 32, 3)) * 255).astype(np.uint8)
    params = dict(hidden_channels=32, embedding_dim=32, n_embeddings=64, max_epochs=3,
                  random_state=0)
    results = {}

    start = time.perf_counter()
    gpu = VQVAEAnomalyDetector(**params, device=args.device).fit(X)
    results["fit_seconds"] = time.perf_counter() - start
    results["net_device"] = str(gpu.net_.device)
    results["bf16"] = gpu.net_.bf16_enabled
    s_gpu = gpu.score_samples(X)
    assert np.isfinite(s_gpu).all()
    # Same seed, fp32 on the device: runs are repeatable there too?
    a = VQVAEAnomalyDetector(**params, device=args.device, mixed_precision=False).fit(X)
    b = VQVAEAnomalyDetector(**params, device=args.device, mixed_precision=False).fit(X)
    results["fp32_repeat_max_abs_diff"] = float(np.abs(a.score_samples(X) - b.score_samples(X)).max())
    # bf16 and fp32 networks rank the images alike
    results["bf16_vs_fp32_score_corr"] = float(np.corrcoef(s_gpu, a.score_samples(X))[0, 1])

    with tempfile.TemporaryDirectory() as tmp:
        gpu.save(Path(tmp) / "m.skvqad")
        cpu = VQVAEAnomalyDetector.load(Path(tmp) / "m.skvqad", device="cpu")
        # The same weights on the CPU, in the precision fit resolved (bf16 on CUDA),
        # whatever the host CPU would choose: close to the device's bf16 scores.
        results["host_cpu_native_bf16"] = cpu_has_native_bf16()
        results["loaded_on_cpu_bf16"] = cpu.net_.bf16_enabled
        assert results["loaded_on_cpu_bf16"] == gpu.mixed_precision_
        s_cpu = cpu.score_samples(X)
        results["save_load_cpu_max_abs_diff"] = float(np.abs(s_cpu - s_gpu).max())
        import joblib

        joblib.dump(gpu, Path(tmp) / "m.joblib")
        results["joblib_same_device_equal"] = bool(
            np.array_equal(joblib.load(Path(tmp) / "m.joblib").score_samples(X), s_gpu))
        # The real check: a process that sees no GPU loads the pickle and the model file.
        np.save(Path(tmp) / "X.npy", X)
        code = ("import joblib, numpy as np, sys, torch; assert not torch.cuda.is_available(); "
                "from skvqad import VQVAEAnomalyDetector; X = np.load(sys.argv[1] + '/X.npy'); "
                "a = joblib.load(sys.argv[1] + '/m.joblib').score_samples(X); "
                "b = VQVAEAnomalyDetector.load(sys.argv[1] + '/m.skvqad').score_samples(X); "
                "print(float(np.abs(a - b).max()))")
        run = subprocess.run([sys.executable, "-c", code, tmp], capture_output=True, text=True,
                             env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
        results["cpu_only_process_loads_pickle_and_file"] = run.returncode == 0
        results["cpu_only_process_output"] = (run.stdout + run.stderr)[-500:]

    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        big = np.zeros((20000, 32, 32, 3), dtype=np.uint8)
        gpu.score_samples(big)
        results["score_20k_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20

    results.update(environment(args.device))
    print(json.dumps(results, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    assert results["joblib_same_device_equal"]
    assert results["cpu_only_process_loads_pickle_and_file"], results["cpu_only_process_output"]
    assert results["bf16_vs_fp32_score_corr"] > 0.5


if __name__ == "__main__":
    main()

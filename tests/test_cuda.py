"""What CI cannot check: CUDA training, bfloat16, and a CUDA-fitted detector loading on a CPU.

Each test runs ``benchmarks/gpu_checks.py`` (the script that ``gpu_session.sh`` runs on a lent
GPU, which asserts its own checks) and reads its summary; skipped without CUDA.
"""

import json
from pathlib import Path

import pytest
import torch
from test_examples import ROOT, run_example

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_cuda_fit_bf16_and_cpu_loading(tmp_path):
    out = tmp_path / "gpu_checks.json"
    run_example("gpu_checks", ["--device", "cuda", "--out", str(out)], folder=ROOT / "benchmarks")
    result = json.loads(Path(out).read_text())
    assert result["net_device"].startswith("cuda")
    assert result["cpu_only_process_loads_pickle_and_file"], result["cpu_only_process_output"]
    assert result["joblib_same_device_equal"]
    assert result["loaded_on_cpu_bf16"] == result["bf16"]
    assert result["bf16_vs_fp32_score_corr"] > 0.5

"""Does bfloat16 autocast keep the detector's accuracy? (issue #12)

Runs the two one-vs-rest examples, ``examples/digits_one_vs_rest.py`` and the
``--quick`` CIFAR-10 proxy of ``examples/cifar10_one_vs_rest.py``, in float32
at several seeds and under bfloat16 autocast (``mixed_precision=True``), and
compares the change that bfloat16 makes to the mean image AUROC with the
spread between float32 seeds: the seed noise it has to stay within.

Each run is one unit: its JSON goes to ``<out>_runs/`` as soon as it
finishes, and units already there are skipped, so a stopped run resumes.
On a CPU without native bfloat16 (AVX2), torch emulates it, an order of
magnitude slower; it multiplies the same bfloat16 numbers and sums in float32,
as the native instructions do, so the accuracy is expected to be close to
the fast path's (their summation order and denormal handling differ; not
measured on native hardware here). Commands::

    python benchmarks/studies/bf16_accuracy.py --out benchmarks/results/bf16_accuracy_cpu \\
        --cifar-dir cifar10-jpg --device cpu
    python benchmarks/studies/bf16_accuracy.py --out /tmp/bf16 --digits-epochs 1 --seeds 0 --device cpu
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

# _common lives in benchmarks/, beside the speed benchmarks.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import add_device_argument, command_line, versions_text, write_results  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
#: Data set -> (example script, score columns of its JSON).
DATASETS = {
    "digits": ("digits_one_vs_rest.py", ("ssim", "am", "ssim+am")),
    "cifar10-quick": ("cifar10_one_vs_rest.py", ("ssim", "am", "ssim+am", "am-rel", "ssim+am-rel")),
}


def unit_command(dataset, precision, seed, args, json_path):
    """The example's command line for one unit."""
    script, _ = DATASETS[dataset]
    argv = ["--mixed-precision", "true" if precision == "bf16" else "false",
            "--random-state", str(seed), "--device", args.device, "--json", str(json_path)]
    if dataset == "digits":
        if args.digits_epochs:
            argv += ["--max-epochs", str(args.digits_epochs)]
    else:
        argv += ["--quick", "--data-dir", args.cifar_dir]
        if args.cifar_epochs:
            argv += ["--max-epochs", str(args.cifar_epochs)]
    return [sys.executable, str(EXAMPLES / script), *argv]


def check_unit(path, result, precision, seed, max_epochs):
    """Refuse a unit's results that were not run as its name and the options say."""
    params = result["params"]
    expected = {"mixed_precision": precision == "bf16", "random_state": seed}
    if max_epochs:
        expected["max_epochs"] = max_epochs
    differ = sorted(k for k, v in expected.items() if params.get(k) != v)
    trained_bf16 = result.get("bf16", result["rows"][0].get("bf16"))
    if differ or bool(trained_bf16) != (precision == "bf16"):
        raise ValueError(f"{path} was run with other settings ({differ or 'bf16'}); "
                         "delete it or use another --out")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="path without extension for .json and .md")
    parser.add_argument("--cifar-dir", help="CIFAR-10 image folder (train/<class>/, test/<class>/); "
                        "without it only digits runs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="float32 seeds (their spread is the seed noise)")
    parser.add_argument("--bf16-seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS),
                        help="default: digits, and cifar10-quick when --cifar-dir is given")
    parser.add_argument("--digits-epochs", type=int, help="default: the example's")
    parser.add_argument("--cifar-epochs", type=int, help="default: the example's --quick setting")
    add_device_argument(parser)
    args = parser.parse_args(argv)
    datasets = args.datasets or ["digits"] + (["cifar10-quick"] if args.cifar_dir else [])
    if "cifar10-quick" in datasets and not args.cifar_dir:
        parser.error("cifar10-quick needs --cifar-dir")
    if len(args.seeds) < 2:
        print("one float32 seed gives no seed noise: the comparison is left out", flush=True)

    out = Path(args.out)
    runs_dir = out.with_name(out.name + "_runs")
    runs_dir.mkdir(parents=True, exist_ok=True)
    runs = []
    for dataset in datasets:
        # Each bf16 unit right after the float32 unit of its seed: a run cut short (a
        # device's time limit) compares the two precisions before it adds seeds.
        units = []
        for seed in args.seeds:
            units += [("fp32", seed)] + ([("bf16", seed)] if seed in args.bf16_seeds else [])
        units += [("bf16", s) for s in args.bf16_seeds if s not in args.seeds]
        for precision, seed in units:
            path = runs_dir / f"{dataset}-{precision}-seed{seed}.json"
            cmd = unit_command(dataset, precision, seed, args, path)
            if path.exists():
                print(f"{path.name}: done before", flush=True)
            else:
                print(f"{path.name}: running", flush=True)
                subprocess.run(cmd, check=True)
            result = json.loads(path.read_text())
            check_unit(path, result, precision, seed,
                       args.digits_epochs if dataset == "digits" else args.cifar_epochs)
            rows = result["rows"]
            runs.append({"dataset": dataset, "precision": precision, "seed": seed,
                         "mean": {k: result["mean"][k] for k in DATASETS[dataset][1]},
                         "per_class": [{k: r[k] for k in DATASETS[dataset][1]} for r in rows],
                         "seconds": result["seconds"], "device": result["device"],
                         "versions": result["versions"],
                         "command": " ".join(["python", f"examples/{Path(cmd[1]).name}", *cmd[2:]])})

    import torch

    from skvqad.net import cpu_has_native_bf16

    cpu = {"cpu_capability": torch.backends.cpu.get_cpu_capability(),
           "cpu_has_native_bf16": cpu_has_native_bf16()}
    lines = ["# bfloat16 autocast against float32: mean image AUROC, one-vs-rest", "",
             f"Produced by `{command_line(__file__, argv)}` on {runs[0]['device']}; "
             f"{versions_text(runs[0]['versions'])}. The JSON gives a command that reproduces "
             "each run. "
             f"The CPU (as torch reports it where the table was made): capability "
             f"{cpu['cpu_capability']}, native bfloat16 {cpu['cpu_has_native_bf16']}.", ""]
    summary = {}
    for dataset in datasets:
        keys = DATASETS[dataset][1]
        mine = [r for r in runs if r["dataset"] == dataset]
        lines += [f"## {dataset}", "", "| precision | seed | " + " | ".join(keys) + " | seconds |",
                  "|---" * (len(keys) + 3) + "|"]
        for r in sorted(mine, key=lambda r: (r["precision"] != "fp32", r["seed"])):
            lines.append(f"| {r['precision']} | {r['seed']} | "
                         + " | ".join(f"{r['mean'][k]:.3f}" for k in keys) + f" | {r['seconds']:.0f} |")
        fp32 = {r["seed"]: r for r in mine if r["precision"] == "fp32"}
        if len(fp32) < 2:
            lines.append("")
            continue
        spread = {k: float(np.ptp([r["mean"][k] for r in fp32.values()])) for k in keys}
        diff = {k: [r["mean"][k] - fp32[r["seed"]]["mean"][k] for r in mine
                    if r["precision"] == "bf16" and r["seed"] in fp32] for k in keys}
        # None where no bf16 run has a float32 run of the same seed to compare with.
        summary[dataset] = {"fp32_seed_spread": spread, "bf16_minus_fp32": diff,
                            "within_seed_noise": {k: all(abs(d) <= spread[k] for d in diff[k])
                                                  if diff[k] else None for k in keys}}
        lines += [f"| fp32 spread over {len(fp32)} seeds | | "
                  + " | ".join(f"{spread[k]:.3f}" for k in keys) + " | |",
                  "| bf16 - fp32, same seed | | "
                  + " | ".join(", ".join(f"{d:+.3f}" for d in diff[k]) or "-" for k in keys)
                  + " | |", ""]
    lines += ["The spread is the largest minus the smallest float32 mean over the seeds; "
              "bfloat16 is within seed noise where its change is no larger.",
              "The seconds are the example's own wall time (digits: training, scoring and the "
              "baselines; CIFAR-10: training and scoring); on a CPU without native bfloat16 they "
              "show the emulation's cost, not the fast path's speed (`bench_bf16.py` measures that)."]
    write_results(out, {"runs": runs, "summary": summary, **cpu,
                        "command": command_line(__file__, argv)},
                  lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()

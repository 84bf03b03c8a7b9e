"""Pieces shared by the benchmark scripts: the ``--device`` option, the command
line that reproduces a run, and the result files (``<out>.json`` + ``<out>.md``,
each saying the command, the device and the package versions).

The speed benchmarks import it as ``from _common import ...``: Python puts the
folder of the script that runs (``benchmarks/``) first on ``sys.path``; the
studies (``benchmarks/studies/``) put ``benchmarks/`` there first.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = [
    "add_device_argument", "command_line", "provenance", "score_files", "scores_made_on", "sync",
    "versions_text", "write_results",
]


def add_device_argument(parser, default: str = "auto") -> None:
    """``--device``: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``..."""
    parser.add_argument("--device", default=default,
                        help="torch device; auto = CUDA when available, else the CPU")


def command_line(script: str, argv) -> str:
    """The command that reproduces this run, ``python benchmarks/[studies/]<script> <arguments>``."""
    args = list(argv) if argv is not None else sys.argv[1:]
    path = Path(script).resolve().relative_to(Path(__file__).resolve().parents[1])
    return " ".join(["python", path.as_posix(), *args])


def versions_text(versions: dict) -> str:
    """``skvqad 0.1.0, torch 2.13.0, ...`` from the ``versions`` of :func:`skvqad.utils.environment`."""
    return ", ".join(f"{k} {v}" for k, v in versions.items())


def provenance(command: str, env: dict) -> str:
    """A markdown line: the command, the device and the versions (of :func:`skvqad.utils.environment`)."""
    return f"Produced by `{command}` on {env['device']}; {versions_text(env['versions'])}."


def score_files(rows_dir) -> list[Path]:
    """The ``<class>.scores.npz`` that ``examples/cifar10_one_vs_rest.py --rows-dir`` keeps,
    sorted by name; exits with a message naming the folder if there are none."""
    paths = sorted(Path(rows_dir).glob("*.scores.npz"))
    if not paths:
        raise SystemExit(f"no <class>.scores.npz in {rows_dir}: run examples/cifar10_one_vs_rest.py "
                         "with --rows-dir first")
    return paths


def scores_made_on(rows_dir, names) -> tuple[dict, str]:
    """The device and versions that made each class's scores (from ``<class>.json`` beside
    them): ``{class: {"device", "versions"}}`` and the same as one line of text."""
    made_by = {}
    for name in names:
        meta = Path(rows_dir) / f"{name}.json"
        if meta.exists():
            row = json.loads(meta.read_text())
            made_by[name] = {"device": row.get("device"), "versions": row.get("versions")}
    text = "; ".join(sorted({f"{m['device']}, {versions_text(m['versions'] or {})}"
                             for m in made_by.values()}))
    return made_by, text or "an unrecorded device"


def write_results(out, result: dict, lines: list[str]) -> None:
    """Write ``result`` to ``<out>.json`` and ``lines`` to ``<out>.md`` (replacing a suffix)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def sync(device) -> None:
    """Wait for the GPU's queued work, so that a timer measures it (nothing on the CPU)."""
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)  # that device's queue, not only the current one

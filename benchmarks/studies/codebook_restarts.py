"""How many codes codebook restarts re-draw per epoch, and how many stay in use (issue #26).

Trains the CIFAR-10 proxy network (64 channels, D = 64, M = 512) on the first
``--n-images`` training images of one class at ``--batch-size`` (129 at 128:
a last batch of one image, the case where drawing dead codes from the last
batch alone made duplicates that died again) and prints each epoch's
``codes_restarted`` and ``codes_used`` from the history. Run it with two
versions of skvqad to compare them (e.g. ``PYTHONPATH=<other checkout>``)::

    python benchmarks/studies/codebook_restarts.py --data-dir cifar10-jpg \
        --out benchmarks/results/codebook_restarts_cpu
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from skvqad import VQVAEAnomalyDetector
from skvqad.datasets import load_image_folder
from skvqad.utils import environment

# _common lives in benchmarks/, beside the speed benchmarks.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import add_device_argument, command_line, provenance, write_results  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True, help="CIFAR-10 image folder (train/<class>/)")
    parser.add_argument("--class-name", default="airplane")
    parser.add_argument("--n-images", type=int, default=129)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument("--out", help="<out>.json and <out>.md")
    add_device_argument(parser)
    args = parser.parse_args(argv)
    data = load_image_folder(args.data_dir, split="train", color_mode="rgb")
    X = data.images[data.target == list(data.target_names).index(args.class_name)][: args.n_images]
    det = VQVAEAnomalyDetector(hidden_channels=64, embedding_dim=64, n_embeddings=512,
                               max_epochs=args.max_epochs, batch_size=args.batch_size,
                               device=args.device, random_state=0).fit(X)
    restarted = [int(v) for v in det.history_[:, "codes_restarted"]]
    used = [int(v) for v in det.history_[:, "codes_used"]]
    env = environment(det.net_.device)
    command = command_line(__file__, argv)
    lines = [f"# Codebook restarts: {len(X)} {args.class_name} images at batch {args.batch_size}", "",
             "| epoch | codes restarted | codes used |", "|---|---|---|",
             *(f"| {i + 1} | {r} | {u} |" for i, (r, u) in enumerate(zip(restarted, used, strict=True))),
             "", provenance(command, env)]
    print("\n".join(lines))
    if args.out:
        write_results(args.out, {"command": command, "codes_restarted": restarted,
                                 "codes_used": used, **env}, lines)


if __name__ == "__main__":
    main()

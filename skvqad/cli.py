"""The ``skvqad`` command line: train on a folder of images, score a folder, describe a model.

::

    skvqad fit normal_images/ -o model.skvqad --image-size 128 --set max_epochs=60
    skvqad fit normal_images/ -o model.skvqad --checkpoint-dir ckpt/   # resumable
    skvqad score model.skvqad new_images/ -o scores.csv --maps maps/
    skvqad info model.skvqad

``python -m skvqad`` is the same command. Errors (a missing folder, an
unreadable image, a size the model does not take, a bad ``--set``) print one
line and exit with status 2; ``fit`` also stops on Ctrl-C (status 130)
without writing a model.
"""

from __future__ import annotations

import argparse
import ast
import csv
import sys
from pathlib import Path

import numpy as np

__all__ = ["main"]


class CommandError(Exception):
    """An error the command line reports in one line (exit status 2)."""


def _parse_set(items) -> dict:
    """``["max_epochs=60", "score_map='ssim'"]`` -> parameters; values are Python literals."""
    params = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            raise CommandError(f"--set takes PARAM=VALUE, got {item!r}.")
        try:
            params[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[name] = value  # a bare word: a string (score_map=ssim)
    return params


def _image_paths(folder) -> list[Path]:
    from .datasets._io import _image_files

    folder = Path(folder)
    if not folder.is_dir():
        raise CommandError(f"{folder} is not a folder.")
    paths = _image_files(folder)
    if not paths:
        raise CommandError(f"{folder} holds no image files ({', '.join(_extensions())}).")
    return paths


def _extensions():
    from .datasets import IMAGE_EXTENSIONS

    return IMAGE_EXTENSIONS


def _read(paths, size, color_mode):
    """uint8 images of ``paths``: ``(n, H, W)`` or ``(n, H, W, 3)``; their sizes on disk."""
    from .datasets._io import _load_images

    try:
        return _load_images(paths, size, color_mode)
    except (OSError, ValueError) as exc:
        raise CommandError(str(exc)) from exc


def _fit(args) -> None:
    from . import VQVAEAnomalyDetector

    params = _parse_set(args.set)
    if args.checkpoint_dir is not None:
        params["checkpoint_dir"] = args.checkpoint_dir
        params.setdefault("random_state", 0)  # a resumed fit needs the seed of the first
    paths = _image_paths(args.train_dir)
    size = None if args.image_size is None else (args.image_size, args.image_size)
    images, _ = _read(paths, size, args.color_mode)
    print(f"Training on {len(images)} images of {images.shape[1]}x{images.shape[2]} pixels "
          f"from {args.train_dir}", file=sys.stderr)
    try:
        detector = VQVAEAnomalyDetector(**params)
    except TypeError as exc:
        raise CommandError(f"--set: {exc}") from exc
    if "verbose" not in params:
        detector.set_params(verbose=1)  # skorch's table of epochs and a progress bar
    try:
        detector.fit(images)
    except (ValueError, FloatingPointError) as exc:  # parameter validation; a diverging loss
        raise CommandError(str(exc)) from exc
    detector.save(args.output)
    print(f"Saved {args.output}", file=sys.stderr)


def _heat_map(values, vmax):
    """An (H, W) map as an RGB uint8 heat map (matplotlib's inferno), 0 to ``vmax``."""
    try:
        from matplotlib import colormaps
    except ImportError as exc:
        raise CommandError("--maps needs matplotlib: pip install 'skvqad[plot]'") from exc
    scaled = np.clip(values / vmax, 0, 1) if vmax > 0 else np.zeros_like(values)
    return (colormaps["inferno"](scaled)[..., :3] * 255).astype(np.uint8)


def _score(args) -> None:
    from PIL import Image
    from tqdm import tqdm

    from . import VQVAEAnomalyDetector

    try:
        detector = VQVAEAnomalyDetector.load(args.model)
    except (OSError, ValueError) as exc:
        raise CommandError(str(exc)) from exc
    height, width, channels = detector.image_shape_
    color_mode = "grayscale" if channels == 1 else "rgb"
    paths = _image_paths(args.image_dir)
    if args.maps:
        Path(args.maps).mkdir(parents=True, exist_ok=True)
    out = open(args.output, "w", newline="") if args.output else sys.stdout
    # One colour scale for the whole folder, fixed before the first map is written, so that
    # an image's heat map does not depend on the batches: --vmax, or the model's map_scale_.
    vmax = args.vmax if args.vmax is not None else getattr(detector, "map_scale_", None)
    if args.maps and vmax is None:
        print("The model has no map_scale_ (written by an older skvqad): the heat maps' scale "
              "is the first batch's; pass --vmax for a fixed one.", file=sys.stderr)
    try:
        writer = csv.writer(out)
        writer.writerow(["path", "score", "label"])
        batch = max(1, int(args.batch_size or detector.batch_size))
        for start in tqdm(range(0, len(paths), batch), desc="scoring", unit="batch",
                          disable=args.quiet, file=sys.stderr):
            chunk = paths[start : start + batch]
            images, sizes = _read(chunk, (height, width) if args.resize else None, color_mode)
            wrong = next((p for p, s in zip(chunk, sizes, strict=True) if s != (height, width)),
                         None)
            if wrong is not None and not args.resize:
                h, w = sizes[chunk.index(wrong)]
                raise CommandError(
                    f"{wrong} is {h}x{w} pixels, the model takes {height}x{width}: pass --resize "
                    "to resize the images (as fit's --image-size did), or score images of that size."
                )
            # score_samples and, for --maps, anomaly_map: one pass of the network gives both.
            batches = list(detector.iter_scores(images, maps=bool(args.maps)))
            if args.maps:
                batches, batch_maps = zip(*batches, strict=True)
            scores = np.concatenate(batches)
            labels = np.where(scores - detector.offset_ < 0, -1, 1)  # predict's rule
            for path, score, label in zip(chunk, scores, labels, strict=True):
                writer.writerow([str(path), f"{score:.6g}", int(label)])
            if args.maps:
                maps = np.concatenate(batch_maps)
                if vmax is None:
                    vmax = float(np.quantile(maps, 0.999)) or 1.0
                for path, m in zip(chunk, maps, strict=True):
                    # The full file name: a.png and a.jpg get a.png.png and a.jpg.png.
                    Image.fromarray(_heat_map(m, vmax)).save(Path(args.maps) / f"{path.name}.png")
    finally:
        if out is not sys.stdout:
            out.close()


def _info(args) -> None:
    from . import VQVAEAnomalyDetector

    try:
        detector = VQVAEAnomalyDetector.load(args.model)
    except (OSError, ValueError) as exc:
        raise CommandError(str(exc)) from exc
    from ._model_file import _read_payload
    from .utils import environment

    saved_by = _read_payload(args.model).get("skvqad_version")  # read (and verified) again
    history = detector.history_
    height, width, channels = detector.image_shape_
    lines = [f"model: {args.model}",
             f"images: {height}x{width} pixels, {channels} channel(s); "
             f"latent grid: {detector.n_downsampling_} downsampling(s)",
             f"training: {len(history)} epochs; last train_loss {history[-1, 'train_loss']:.5g}, "
             f"codes used {history[-1, 'codes_used']} of {detector.n_embeddings}",
             f"threshold (offset_): {detector.offset_:.6g}",
             "parameters:"]
    bits = getattr(detector, "integer_bits_", None)
    if bits is not None:
        lines.insert(2, f"integer images: read as {bits}-bit (as in fit)")
    lines += [f"  {k} = {v!r}" for k, v in sorted(detector.get_params().items())]
    env = environment(detector.net_.device)
    lines.append(f"saved by: skvqad {saved_by}")
    lines.append("running with: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()))
    print("\n".join(lines))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skvqad", description="Image anomaly detection with a VQ-VAE (skvqad).")
    sub = parser.add_subparsers(dest="command", required=True)

    fit = sub.add_parser("fit", help="train on a folder of normal images")
    fit.add_argument("train_dir", help="folder of normal images (png, jpg, bmp, tif)")
    fit.add_argument("-o", "--output", required=True, help="the model file to write")
    fit.add_argument("--image-size", type=int, help="resize images to N x N pixels")
    fit.add_argument("--checkpoint-dir", metavar="DIR",
                     help="write the training state here after each epoch; run the same "
                     "command again to resume a stopped fit after its last completed epoch "
                     "(random_state defaults to 0 then)")
    fit.add_argument("--color-mode", choices=["grayscale", "rgb"],
                     help="convert every image (default: as the files are, all alike)")
    fit.add_argument("--set", action="append", metavar="PARAM=VALUE",
                     help="a VQVAEAnomalyDetector parameter, e.g. --set max_epochs=60 "
                     "(values are Python literals; repeat for more)")
    fit.set_defaults(run=_fit)

    score = sub.add_parser("score", help="score a folder of images with a model")
    score.add_argument("model", help="a model file written by skvqad fit")
    score.add_argument("image_dir", help="folder of images to score")
    score.add_argument("-o", "--output", help="CSV file (default: standard output)")
    score.add_argument("--maps", metavar="OUT_DIR",
                       help="also write each anomaly map as a PNG heat map, <image file name>.png")
    score.add_argument("--vmax", type=float, help="map value at which the heat maps saturate "
                       "(default: the model's map_scale_, from its training images)")
    score.add_argument("--resize", action="store_true", help="resize images to the model's size")
    score.add_argument("--batch-size", type=int, help="images read and scored at a time")
    score.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    score.set_defaults(run=_score)

    info = sub.add_parser("info", help="describe a model file")
    info.add_argument("model")
    info.set_defaults(run=_info)
    return parser


def main(argv=None) -> int:
    """Run the ``skvqad`` command line.

    Parameters
    ----------
    argv : list of str or None, default=None
        The arguments (``sys.argv[1:]`` when None).

    Returns
    -------
    int
        The exit status: 0, 2 for an error, 130 for Ctrl-C.

    Examples
    --------
    >>> from skvqad.cli import main
    >>> main(["info", "no/such/model.skvqad"])
    2
    """
    args = _parser().parse_args(argv)
    try:
        args.run(args)
    except CommandError as exc:
        print(f"skvqad {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"skvqad {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0

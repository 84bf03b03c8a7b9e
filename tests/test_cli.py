"""The skvqad command line on a tiny folder of images."""

import csv
import runpy
import sys

import numpy as np
import pytest
import torch
from conftest import make_stripes

from skvqad import VQVAEAnomalyDetector
from skvqad.cli import _heat_map, main
from skvqad.net import VQVAENet

PIL = pytest.importorskip("PIL.Image")
pytest.importorskip("matplotlib")

TINY = ["--set", "n_embeddings=8", "--set", "embedding_dim=4", "--set", "hidden_channels=8",
        "--set", "n_residual_layers=1", "--set", "max_epochs=2", "--set", "batch_size=16",
        "--set", "random_state=0", "--set", "device='cpu'", "--set", "verbose=0"]


def folder(path, images):
    path.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        PIL.fromarray((img * 255).round().astype(np.uint8)).save(path / f"{i:03d}.png")
    return path


@pytest.fixture
def model(tmp_path):
    train = folder(tmp_path / "train", make_stripes(24, size=20))
    path = tmp_path / "model.skvqad"
    assert main(["fit", str(train), "-o", str(path), "--image-size", "16", *TINY]) == 0
    return path


def test_fit_trains_on_the_folder_with_the_parameters_set(model):
    det = VQVAEAnomalyDetector.load(model)
    assert det.image_shape_ == (16, 16, 1) and det.n_embeddings == 8 and len(det.history_) == 2


def test_score_writes_one_row_per_image_and_the_maps(model, tmp_path, capsys, monkeypatch):
    images = make_stripes(5, size=16, seed=3)
    images[-1, 4:10, 4:10] = 1.0
    test = folder(tmp_path / "test", images)
    out, maps = tmp_path / "scores.csv", tmp_path / "maps"
    # The scores and the maps come from one pass of the network: 3 batches, 3 passes.
    passes = []
    step = VQVAENet.evaluation_step
    monkeypatch.setattr(VQVAENet, "evaluation_step",
                        lambda self, *a, **k: passes.append(1) or step(self, *a, **k))
    assert main(["score", str(model), str(test), "-o", str(out), "--maps", str(maps),
                 "--batch-size", "2", "-q"]) == 0
    assert len(passes) == 3
    monkeypatch.undo()
    rows = list(csv.DictReader(out.open()))
    assert [r["path"] for r in rows] == [str(test / f"{i:03d}.png") for i in range(5)]
    det = VQVAEAnomalyDetector.load(model)
    X = np.stack([np.asarray(PIL.open(test / f"{i:03d}.png")) for i in range(5)])
    np.testing.assert_allclose([float(r["score"]) for r in rows], det.score_samples(X), rtol=1e-5)
    assert [int(r["label"]) for r in rows] == det.predict(X).tolist()
    assert sorted(p.name for p in maps.iterdir()) == [f"{i:03d}.png.png" for i in range(5)]
    assert np.asarray(PIL.open(maps / "004.png.png")).shape == (16, 16, 3)
    # The heat maps are anomaly_map's, on one colour scale fixed by the model (map_scale_).
    m = det.anomaly_map(X)
    assert 0 < det.map_scale_ < m.max()
    for i in (0, 4):
        np.testing.assert_allclose(np.asarray(PIL.open(maps / f"{i:03d}.png.png")),
                                   _heat_map(m[i], det.map_scale_), atol=1)
    # Without -o the CSV goes to standard output.
    assert main(["score", str(model), str(test), "-q"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "path,score,label"


def test_heat_maps_do_not_depend_on_batches_and_names_do_not_collide(model, tmp_path):
    images = make_stripes(4, size=16, seed=3)
    test = folder(tmp_path / "test", images)
    PIL.fromarray((images[0] * 255).astype(np.uint8)).save(test / "000.jpg")  # same stem
    written = {}
    for batch in ("1", "5"):
        out = tmp_path / f"maps{batch}"
        assert main(["score", str(model), str(test), "-o", str(tmp_path / "s.csv"), "--maps",
                     str(out), "--batch-size", batch, "-q"]) == 0
        written[batch] = {p.name: np.asarray(PIL.open(p)) for p in out.iterdir()}
    assert sorted(written["1"]) == ["000.jpg.png", "000.png.png", "001.png.png", "002.png.png",
                                    "003.png.png"]
    for name in written["1"]:  # batch 1 saturated every map before
        np.testing.assert_array_equal(written["1"][name], written["5"][name])
    # --vmax sets the scale.
    det = VQVAEAnomalyDetector.load(model)
    assert main(["score", str(model), str(test), "-o", str(tmp_path / "s.csv"), "--maps",
                 str(tmp_path / "v"), "--vmax", "1e9", "-q"]) == 0
    black = _heat_map(np.zeros((16, 16)), 1.0)
    np.testing.assert_array_equal(np.asarray(PIL.open(tmp_path / "v" / "001.png.png")), black)
    assert det.map_scale_ != 1e9


def test_fit_and_score_with_a_fused_score_map(tmp_path):
    train = folder(tmp_path / "train", make_stripes(24, size=16))
    path = tmp_path / "fused.skvqad"
    assert main(["fit", str(train), "-o", str(path), *TINY, "--set", "score_map=('ssim', 'prior')",
                 "--set", "prior_radius=1"]) == 0
    det = VQVAEAnomalyDetector.load(path)
    assert det.score_map == ("ssim", "prior") and det.calibration_params_["prior_radius"] == 1
    images = make_stripes(4, size=16, seed=5)
    test = folder(tmp_path / "test", images)
    out = tmp_path / "scores.csv"
    assert main(["score", str(path), str(test), "-o", str(out), "--maps", str(tmp_path / "m"),
                 "-q"]) == 0
    X = np.stack([np.asarray(PIL.open(test / f"{i:03d}.png")) for i in range(4)])
    rows = list(csv.DictReader(out.open()))
    np.testing.assert_allclose([float(r["score"]) for r in rows], det.score_samples(X), rtol=1e-5)
    assert len(list((tmp_path / "m").iterdir())) == 4


def test_info_describes_the_model(model, capsys):
    assert main(["info", str(model)]) == 0
    text = capsys.readouterr().out
    assert "16x16 pixels, 1 channel(s)" in text and "2 epochs" in text
    assert "n_embeddings = 8" in text and "integer images: read as 8-bit" in text
    assert "saved by: skvqad 0." in text and "running with: skvqad" in text


def test_python_dash_m_runs_the_same_command(model, monkeypatch, capsys):
    # runpy.run_module is what `python -m skvqad` runs (without a second interpreter).
    monkeypatch.setattr(sys, "argv", ["skvqad", "info", str(model)])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module("skvqad", run_name="__main__", alter_sys=True)
    assert exit_.value.code in (0, None) and "16x16 pixels" in capsys.readouterr().out


def test_errors_exit_2_with_one_clear_line(model, tmp_path, capsys):
    def fails(argv, match):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert match in err and "Traceback" not in err, err

    fails(["fit", str(tmp_path / "nowhere"), "-o", str(tmp_path / "m")], "is not a folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    fails(["fit", str(empty), "-o", str(tmp_path / "m")], "holds no image files")
    train = folder(tmp_path / "train2", make_stripes(4, size=16))
    fails(["fit", str(train), "-o", str(tmp_path / "m"), "--set", "max_epochs"], "PARAM=VALUE")
    fails(["fit", str(train), "-o", str(tmp_path / "m"), "--set", "epochs=3"], "epochs")
    fails(["fit", str(train), "-o", str(tmp_path / "m"), "--set", "max_epochs=0"],
          "'max_epochs' parameter")
    assert not (tmp_path / "m").exists()
    (train / "broken.png").write_bytes(b"not a png")
    fails(["score", str(model), str(train), "-q"], "broken.png")
    big = folder(tmp_path / "big", make_stripes(2, size=20))
    fails(["score", str(model), str(big), "-q"], "is 20x20 pixels, the model takes 16x16")
    assert main(["score", str(model), str(big), "-q", "--resize"]) == 0
    capsys.readouterr()
    fails(["info", str(tmp_path / "nowhere.skvqad")], "nowhere.skvqad")
    fails(["info", str(big / "000.png")], "not a readable skvqad model file")


def test_numeric_failures_exit_2_with_the_cause(model, tmp_path, capsys):
    # A loss that diverges in fit ends with the detector's own message on one line, and
    # no model file; a model file whose weights hold NaN is refused when score loads it.
    train = folder(tmp_path / "train", make_stripes(24, size=16))
    assert main(["fit", str(train), "-o", str(tmp_path / "m"), *TINY, "--set", "lr=1e30"]) == 2
    err = capsys.readouterr().err
    assert "loss is not finite" in err and "Traceback" not in err, err
    assert not (tmp_path / "m").exists()
    det = VQVAEAnomalyDetector.load(model)
    with torch.no_grad():
        next(det.net_.module_.parameters()).fill_(float("nan"))
    broken = tmp_path / "broken.skvqad"
    det.save(broken)
    assert main(["score", str(broken), str(train), "-q"]) == 2
    err = capsys.readouterr().err
    assert "is not a finite tensor" in err and "Traceback" not in err, err


def test_fit_with_a_checkpoint_dir_resumes_instead_of_training_again(tmp_path, monkeypatch):
    train = folder(tmp_path / "train", make_stripes(24, size=16))
    argv = ["fit", str(train), *TINY, "--checkpoint-dir", str(tmp_path / "ckpt")]
    assert main([*argv, "-o", str(tmp_path / "a.skvqad")]) == 0
    steps = []
    step = VQVAENet.train_step
    monkeypatch.setattr(VQVAENet, "train_step", lambda self, *a, **k: steps.append(1) or step(self, *a, **k))
    assert main([*argv, "-o", str(tmp_path / "b.skvqad")]) == 0
    assert steps == []  # every epoch was in the checkpoint
    X = make_stripes(4, size=16, seed=1)
    a, b = (VQVAEAnomalyDetector.load(tmp_path / f"{n}.skvqad") for n in "ab")
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))
    assert len(b.history_) == 2
    # Other parameters: refused in one line, exit status 2.
    assert main([*argv, "--set", "lr=0.01", "-o", str(tmp_path / "c.skvqad")]) == 2

"""The pixel-level examples run end to end on tiny fake data sets."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

PIL = pytest.importorskip("PIL.Image")
pytest.importorskip("matplotlib")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TINY = ["--image-size", "16", "--max-epochs", "1", "--hidden-channels", "8", "--device", "cpu"]


def run_example(name, argv):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(argv)


def image(rng, defect=False, size=(20, 24)):
    img = (rng.random(size) * 60 + 100).astype(np.uint8)
    mask = np.zeros(size, dtype=np.uint8)
    if defect:
        img[5:10, 6:12] = 250
        mask[5:10, 6:12] = 255
    return img, mask


def save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.fromarray(array).save(path)


def test_magnetic_tile(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "mtd"
    for folder, n, defect in [("MT_Free", 10, False), ("MT_Blowhole", 2, True), ("MT_Break", 2, True),
                              ("MT_Crack", 2, True), ("MT_Fray", 2, True), ("MT_Uneven", 2, True)]:
        for i in range(n):
            img, mask = image(rng, defect)
            save(root / folder / "Imgs" / f"exp_{i}.jpg", img)
            save(root / folder / "Imgs" / f"exp_{i}.png", mask)
    run_example("magnetic_tile", ["--root", str(root), "--out", str(tmp_path / "out"), *TINY,
                                  "--n-embeddings", "8"])
    result = json.loads((tmp_path / "out" / "mtd.json").read_text())
    assert result["n_train"] == 8 and result["n_test"] == 12
    assert set(result["reports"]["ssim+am"]) >= {"all", "MT_Blowhole", "MT_Uneven"}
    assert 0 <= result["reports"]["ssim+am"]["all"]["pixel_auroc"] <= 1
    assert (tmp_path / "out" / "mtd_best.png").stat().st_size > 0


def test_mvtec_ad(tmp_path):
    rng = np.random.default_rng(1)
    cat = tmp_path / "mvtec" / "widget"
    for i in range(8):
        save(cat / "train" / "good" / f"{i:03d}.png", image(rng)[0])
    for i in range(3):
        save(cat / "test" / "good" / f"{i:03d}.png", image(rng)[0])
        img, mask = image(rng, defect=True)
        save(cat / "test" / "crack" / f"{i:03d}.png", img)
        save(cat / "ground_truth" / "crack" / f"{i:03d}_mask.png", mask)
    run_example("mvtec_ad", ["--root", str(tmp_path / "mvtec"), "--categories", "widget",
                             "--out", str(tmp_path / "out"), *TINY, "--n-embeddings", "8"])
    result = json.loads((tmp_path / "out" / "mvtec_ad.json").read_text())
    assert 0 <= result["results"]["widget"]["reports"]["ssim"]["all"]["pixel_auroc"] <= 1
    assert (tmp_path / "out" / "widget_worst.png").exists()


def test_ucsd_ped1(tmp_path):
    rng = np.random.default_rng(2)
    ped = tmp_path / "UCSDped1"
    for i in range(1, 7):
        save(ped / "Train" / "Train001" / f"{i:03d}.tif", image(rng)[0])
    for i in range(1, 7):
        img, mask = image(rng, defect=i > 3)
        save(ped / "Test" / "Test001" / f"{i:03d}.tif", img)
        save(ped / "Test" / "Test001_gt" / f"{i:03d}.bmp", mask)
    run_example("ucsd_ped1", ["--root", str(tmp_path), "--out", str(tmp_path / "out"), *TINY])
    result = json.loads((tmp_path / "out" / "ucsd.json").read_text())
    assert 0 <= result["reports"]["ssim+am"]["pixel_auroc"] <= 1
    assert (tmp_path / "out" / "ucsd.png").exists()

"""The examples and the recipe benchmark run end to end on tiny fake data sets."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from skvqad.net import cpu_has_native_bf16

PIL = pytest.importorskip("PIL.Image")
pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
STUDIES = ROOT / "benchmarks" / "studies"
#: The smoke tests of the one-off studies of benchmarks/: run on purpose and by CI
#: (``python -m pytest -m slow``), not in the default suite.
STUDY = pytest.mark.slow
TINY = ["--image-size", "16", "--max-epochs", "1", "--hidden-channels", "8", "--device", "cpu"]


def run_example(name, argv, folder=EXAMPLES):
    """Run a script's ``main`` with its folder first on ``sys.path``, as ``python <script>`` has it;
    returns what ``main`` returns."""
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(folder))
    try:
        spec.loader.exec_module(module)
        return module.main(argv)
    finally:
        sys.path.remove(str(folder))


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


def mtd_like_folder(root):
    rng = np.random.default_rng(0)
    for folder, n, defect in [("MT_Free", 10, False), ("MT_Blowhole", 2, True), ("MT_Break", 2, True),
                              ("MT_Crack", 2, True), ("MT_Fray", 2, True), ("MT_Uneven", 2, True)]:
        for i in range(n):
            img, mask = image(rng, defect)
            if folder == "MT_Uneven":  # a larger defect region than the other types'
                img[12:18], mask[12:18] = 30, 255
            save(root / folder / "Imgs" / f"exp_{i}.jpg", img)
            save(root / folder / "Imgs" / f"exp_{i}.png", mask)
    return root


def test_magnetic_tile(tmp_path):
    root = mtd_like_folder(tmp_path / "mtd")
    run_example("magnetic_tile", ["--root", str(root), "--out", str(tmp_path / "out"), *TINY,
                                  "--n-embeddings", "8", "--n-downsampling", "1",
                                  "--ssim-dilation-radius", "2", "--score-pooling", "0.99"])
    result = json.loads((tmp_path / "out" / "mtd.json").read_text())
    assert result["n_train"] == 8 and result["n_test"] == 12
    assert result["n_downsampling"] == 1 and result["params"]["ssim_dilation_radius"] == 2
    assert result["params"]["score_pooling"] == 0.99
    reports = result["reports"]
    assert result["figure_map"] == max(reports, key=lambda k: reports[k]["all"]["pixel_auroc"])
    table = (tmp_path / "out" / "mtd.md").read_text()
    assert "| AUPRO SSIM | AUPRO SSIM+AM |" in table
    assert f"| {reports['ssim']['all']['aupro']:.3f} | {reports['ssim+am']['all']['aupro']:.3f} |" in table
    assert set(result["reports"]["ssim+am"]) >= {"all", "MT_Blowhole", "MT_Uneven"}
    assert 0 <= result["reports"]["ssim+am"]["all"]["pixel_auroc"] <= 1
    assert (tmp_path / "out" / "mtd_best.png").stat().st_size > 0


def test_magnetic_tile_refuses_a_bad_n_downsampling(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_example("magnetic_tile", ["--root", str(tmp_path), "--n-downsampling", "two"])
    assert '"auto" or a positive integer' in capsys.readouterr().err


@STUDY
def test_postprocessing_study_on_mtd(tmp_path):
    root = mtd_like_folder(tmp_path / "mtd")
    out = tmp_path / "post"
    run_example("postprocessing", ["--data", "mtd", "--root", str(root), "--out", str(out), *TINY,
                                   "--n-embeddings", "8", "--n-downsampling", "1"],
                folder=STUDIES)
    result = json.loads(out.with_suffix(".json").read_text())
    assert result["command"].startswith("python benchmarks/studies/postprocessing.py --data mtd")
    assert len(result["rows"]) == 20
    assert sum(r["settings"]["alignment"] == "relative" for r in result["rows"]) == 2
    assert {r["settings"]["score_map"] for r in result["rows"]} == {"ssim", "ssim+am"}
    assert all(0 <= r["all"]["pixel_auroc"] <= 1 for r in result["rows"])
    assert set(result["rows"][0]["by_type"]) >= {"MT_Blowhole", "MT_Uneven"}
    assert "1 downsamplings" in out.with_suffix(".md").read_text()
    # Every defect image is a test image: the shares are the types' mask pixels.
    from skvqad.datasets import load_folder_with_masks

    types = [f"MT_{t}" for t in ("Blowhole", "Break", "Crack", "Fray", "Uneven")]
    data = load_folder_with_masks(root / "MT_Free" / "Imgs", [root / t / "Imgs" for t in types],
                                  image_size=16)
    kinds = np.asarray(data.defect_types)
    pixels = {t: data.masks[kinds == t].sum() for t in types}
    share = result["anomalous_pixel_share"]
    assert share == pytest.approx({t: pixels[t] / sum(pixels.values()) for t in types})
    assert share["MT_Uneven"] > 2 * share["MT_Fray"] > 0  # the fake Uneven defects are larger
    assert result["mask_coverage"] == pytest.approx(
        {t: data.masks[kinds == t].mean() for t in types})
    assert f"Uneven {share['MT_Uneven']:.1%}" in out.with_suffix(".md").read_text()


def mvtec_like_folder(root):
    rng = np.random.default_rng(1)
    for name in ("gadget", "widget"):
        cat = root / name
        for i in range(8):
            save(cat / "train" / "good" / f"{i:03d}.png", image(rng)[0])
        for i in range(3):
            save(cat / "test" / "good" / f"{i:03d}.png", image(rng)[0])
            img, mask = image(rng, defect=True)
            save(cat / "test" / "crack" / f"{i:03d}.png", img)
            save(cat / "ground_truth" / "crack" / f"{i:03d}_mask.png", mask)
    return root


@STUDY
def test_postprocessing_study_on_a_kept_mvtec_model(tmp_path):
    root = mvtec_like_folder(tmp_path / "mvtec")
    run_example("mvtec_ad", ["--root", str(root), "--categories", "widget", "--out",
                             str(tmp_path / "out"), *TINY, "--n-embeddings", "8",
                             "--n-downsampling", "1", "--no-figures",
                             "--model-dir", str(tmp_path / "models")])
    out = tmp_path / "post"
    argv = ["--data", "mvtec", "--root", str(root), "--category", "widget", "--image-size", "16",
            "--model", str(tmp_path / "models" / "widget.skvqad"), "--device", "cpu",
            "--out", str(out)]
    run_example("postprocessing", argv, folder=STUDIES)
    result = json.loads(out.with_suffix(".json").read_text())
    assert len(result["rows"]) == 20 and result["rows"][0]["setting"] == "as in the example"
    assert result["rows"][1]["settings"]["dilation_radius"] == 0
    assert all(0 <= r["all"]["pixel_auroc"] <= 1 for r in result["rows"])
    assert "| dilation_radius=0 |" in out.with_suffix(".md").read_text()
    with pytest.raises(SystemExit, match="needs --category and --model"):
        run_example("postprocessing", [*argv[:4], "--out", str(out)], folder=STUDIES)


def test_mvtec_ad(tmp_path):
    mvtec_like_folder(tmp_path / "mvtec")
    # The first category must leave no setting behind for the second (scored as if alone).
    alone = tmp_path / "alone"
    run_example("mvtec_ad", ["--root", str(tmp_path / "mvtec"), "--categories", "widget",
                             "--out", str(alone), *TINY, "--n-embeddings", "8", "--embedding-dim", "4",
                             "--n-downsampling", "1", "--random-state", "3", "--no-figures"])
    assert not list(alone.glob("*.png"))
    argv = ["--root", str(tmp_path / "mvtec"), "--categories", "gadget", "widget",
            "--out", str(tmp_path / "out"), *TINY, "--n-embeddings", "8", "--embedding-dim", "4",
            "--n-downsampling", "1", "--random-state", "3", "--model-dir", str(tmp_path / "models")]
    run_example("mvtec_ad", argv)
    result = json.loads((tmp_path / "out" / "mvtec_ad.json").read_text())
    reports = result["results"]["widget"]["reports"]
    first = json.loads((alone / "mvtec_ad.json").read_text())["results"]["widget"]["reports"]
    for name in reports:
        assert reports[name]["all"]["pixel_auroc"] == pytest.approx(first[name]["all"]["pixel_auroc"])
    module = importlib.util.module_from_spec(
        importlib.util.spec_from_file_location("m", EXAMPLES / "mvtec_ad.py"))
    module.__spec__.loader.exec_module(module)
    assert sorted(reports) == sorted([*module.SETTINGS, module.BASELINE])
    assert 0 <= reports[module.BASELINE]["all"]["pixel_auroc"] <= 1
    for name in module.SETTINGS:
        report = reports[name]
        assert 0 <= report["all"]["pixel_auroc"] <= 1
        # Fused maps are calibrated under the mean pooling only.
        fused = not isinstance(module.SETTINGS[name]["score_map"], str)
        assert sorted(report["all"]["image_auroc_pooled"]) == ([] if fused else ["max", "q99"])
    assert (tmp_path / "out" / "widget_worst.png").exists()
    assert (tmp_path / "models" / "widget.skvqad").exists()
    params = result["results"]["widget"]["params"]
    assert (params["embedding_dim"], params["n_downsampling"], params["random_state"]) == (4, 1, 3)
    assert params["alignment"] == "squared"
    table = (tmp_path / "out" / "mvtec_ad.md").read_text()
    assert "| widget | - | - |" in table and "nan" not in table  # not a Table I category

    # Resumable: a category with a row file is not run again, and the tables are rebuilt.
    row = tmp_path / "out" / "rows" / "widget.json"
    marked = json.loads(row.read_text())
    marked["reports"]["SSIM"]["all"]["pixel_auroc"] = 0.123456
    row.write_text(json.dumps(marked))
    run_example("mvtec_ad", argv)
    assert "| widget | - | - | 0.123 |" in (tmp_path / "out" / "mvtec_ad.md").read_text()
    # A kept model is reused: scoring again without the row gives the same figures.
    row.unlink()
    run_example("mvtec_ad", [*argv, "--no-figures"])
    again = json.loads((tmp_path / "out" / "mvtec_ad.json").read_text())["results"]["widget"]
    assert again["fit_seconds"] is None and len(again["epoch_seconds"]) == 1
    # ... but not a model trained with other parameters.
    row.unlink()
    with pytest.raises(SystemExit, match="other parameters"):
        run_example("mvtec_ad", [*argv, "--n-embeddings", "16"])
    for key in ("pixel_auroc", "aupro", "image_auroc"):
        assert again["reports"]["SSIM+AM"]["all"][key] == pytest.approx(
            reports["SSIM+AM"]["all"][key])


@pytest.mark.parametrize("subset, folder", [("ped1", "UCSDped1"), ("ped2", "UCSDped2")])
def test_ucsd_ped(tmp_path, subset, folder):
    rng = np.random.default_rng(2)
    ped = tmp_path / folder
    for i in range(1, 7):
        save(ped / "Train" / "Train001" / f"{i:03d}.tif", image(rng)[0])
    for i in range(1, 7):
        img, mask = image(rng, defect=i > 3)
        # Ped2 as copies in circulation have it: .jpg frames, frameNNN.bmp masks.
        name = f"{i:03d}.tif" if subset == "ped1" else f"{i:03d}.jpg"
        save(ped / "Test" / "Test001" / name, img)
        save(ped / "Test" / "Test001_gt" / (f"{i:03d}.bmp" if subset == "ped1" else f"frame{i:03d}.bmp"),
             mask)
    run_example("ucsd_ped", ["--root", str(tmp_path), "--subset", subset,
                             "--out", str(tmp_path / "out"), *TINY])
    result = json.loads((tmp_path / "out" / "ucsd.json").read_text())
    assert set(result["reports"]) == {"SSIM", "SSIM+AM", "prior r1", "z(SSIM+AM, prior r1)",
                                      "PCA residual (pixels)"}
    assert all(0 <= r[k] <= 1 for r in result["reports"].values()
               for k in ("pixel_auroc", "aupro", "image_auroc"))
    assert (tmp_path / "out" / "ucsd.png").exists()
    table = (tmp_path / "out" / "ucsd.md").read_text()
    assert f"pixel AUROC, {subset}" in table
    assert ("(paper)" in table) == (subset == "ped1") and "nan" not in table
    assert "PCA residual (pixels) |" in table


def cifar_like_folder(root, classes=("airplane", "automobile", "bird"), n_train=6, n_test=4):
    """A CIFAR-10-style folder of 8 px colour images, one brightness per class."""
    rng = np.random.default_rng(3)
    for k, name in enumerate(classes):
        for split, n in (("train", n_train), ("test", n_test)):
            for i in range(n):
                img = np.clip(rng.normal(60 + 60 * k, 20, size=(8, 8, 3)), 0, 255).astype(np.uint8)
                save(root / split / name / f"{i:04d}.png", img)
    return root


def test_cifar10_one_vs_rest(tmp_path, capsys):
    root = cifar_like_folder(tmp_path / "cifar")
    out, rows = tmp_path / "cifar10.json", tmp_path / "rows"
    argv = ["--data-dir", str(root), "--quick", "--max-epochs", "1", "--device", "cpu",
            "--json", str(out), "--markdown", str(tmp_path / "cifar10.md"),
            "--n-embeddings", "16", "--dilation-radius", "0", "--rows-dir", str(rows)]
    run_example("cifar10_one_vs_rest", argv + ["--classes", "airplane", "bird"])
    assert sorted(p.name for p in rows.iterdir()) == [
        "airplane.json", "airplane.scores.npz", "bird.json", "bird.scores.npz"]
    first = json.loads(out.read_text())
    # Beside each row, the image scores of every column, from which its AUROCs come.
    with np.load(rows / "bird.scores.npz") as f:
        assert f["normal"].sum() == 4 and len(f["normal"]) == 12
        detector_columns = {"ssim", "ssim+am", "am", "ssim+am-rel", "am-rel", "prior",
                            "z(am,prior)", "z(ssim+am,prior)", "z(ssim,am,prior)", "am-d0",
                            "prior-d0", "z(am,prior)-d0", "z(ssim+am,prior)-d0",
                            "z(ssim,am,prior)-d0"}
        assert set(f.files) == {"normal", "knn", "pca", "iforest", *detector_columns,
                                *(f"train_{k}" for k in detector_columns)}
        for key, auroc in first["rows"][1].items():
            if key in f:
                assert f[key].dtype == np.float32 and len(f[key]) == 12
                assert roc_auc_score(f["normal"], f[key]) == pytest.approx(auroc, abs=1e-6), key
        # ... and the detector's columns on the class's 6 training images.
        for key in detector_columns:
            assert f[f"train_{key}"].dtype == np.float32 and len(f[f"train_{key}"]) == 6
        assert not np.array_equal(f["train_ssim"], f["train_am"])
    # benchmarks/studies/cifar10_score_fusion.py reads these files, training scores included.
    run_example("cifar10_score_fusion", ["--rows-dir", str(rows), "--out", str(tmp_path / "fu")],
                folder=STUDIES)
    fusion = json.loads((tmp_path / "fu.json").read_text())
    assert [r["class"] for r in fusion["rows"]] == ["airplane", "bird"]
    assert fusion["rows"][1]["ssim"] == pytest.approx(first["rows"][1]["ssim"], abs=1e-6)
    assert all(r["has_train_scores"] and "ecdf-mean(ssim,am-rel)" in r for r in fusion["rows"])
    # A resumed run skips the classes already in --rows-dir and runs the rest; a row made
    # before a parameter existed (here: without score_pooling) resumes if it is at its default.
    bird = json.loads((rows / "bird.json").read_text())
    bird["marker"] = 1
    bird["paused_seconds"] = 125.0
    bird["cores_shared_note"] = "tests shared the cores for 3 minutes"
    del bird["params"]["score_pooling"]
    native = cpu_has_native_bf16()
    if not native:
        del bird["bf16"]  # rows from before the key were trained in float32
    (rows / "bird.json").write_text(json.dumps(bird))
    run_example("cifar10_one_vs_rest", argv)
    result = json.loads(out.read_text())
    assert [r["class"] for r in result["rows"]] == ["airplane", "automobile", "bird"]
    assert result["rows"][2].get("marker") == 1  # read back, not recomputed
    assert result["rows"][0] == first["rows"][0]
    assert result["params"]["n_embeddings"] == 16 and result["params"]["dilation_radius"] == 0
    assert result["params"]["alignment"] == "squared"  # the relative columns leave no trace
    assert result["label"].startswith("QUICK RUN")
    assert "--rows-dir" in result["command"]
    keys = ("ssim", "ssim+am", "am", "ssim+am-rel", "am-rel", "prior", "z(am,prior)",
            "z(ssim+am,prior)", "z(ssim,am,prior)", "am-d0", "prior-d0", "z(am,prior)-d0",
            "z(ssim+am,prior)-d0", "z(ssim,am,prior)-d0", "knn", "pca", "iforest")
    assert set(result["mean"]) == set(keys)
    for row in result["rows"]:
        assert row["n_train"] == 6 and row["n_test"] == 12
        assert all(0 <= row[k] <= 1 for k in keys)
        assert row["device"].startswith("CPU") and "torch" in row["versions"]
    # The relative columns do use the relative AM.
    assert any(row["am-rel"] != row["am"] for row in result["rows"])
    # Each row keeps the calibration of the fused columns, measured by fit.
    assert set(result["rows"][0]["score_calibration"]) == {"ssim", "am", "ssim+am", "prior"}

    # One brightness per class: the pixel baselines separate the classes well.
    assert all(row["knn"] > 0.9 for row in result["rows"])
    assert [row.get("bf16") for row in result["rows"]] == [native, native, native or None]
    md = (tmp_path / "cifar10.md").read_text()
    assert "| **mean (3)** |" in md and "kNN pixels" in md and "Produced by `python" in md
    assert ("training in bfloat16 autocast;" if native else "training in float32;") in md
    assert "include the time the run was paused: bird 125 s." in md
    assert "shared the cores during part of the fits of bird (their rows" in md
    # Rows run with other settings are not mixed into the table...
    for other, differ in (([a if a != "16" else "8" for a in argv], "n_embeddings"),
                          (argv + ["--random-state", "1"], "random_state")):
        with pytest.raises(SystemExit):
            run_example("cifar10_one_vs_rest", other)
        err = capsys.readouterr().err.splitlines()[-1]
        assert "other settings" in err and differ in err
    # ... nor rows trained in the other precision: mixed_precision counts by what it
    # resolves to, so rows made with "auto" go on with the flag that gives their precision.
    same, flipped = ("true", "false") if native else ("false", "true")
    with pytest.raises(SystemExit):
        run_example("cifar10_one_vs_rest", argv + ["--mixed-precision", flipped])
    err = capsys.readouterr().err
    assert f"airplane.json was trained in {'bfloat16' if native else 'float32'}" in err
    assert f"pass --mixed-precision {same}" in err
    run_example("cifar10_one_vs_rest", argv + ["--mixed-precision", same])
    assert "airplane: done before" in capsys.readouterr().out


@STUDY
def test_cifar10_recipe_benchmark(tmp_path):
    root = cifar_like_folder(tmp_path / "cifar")
    out = tmp_path / "recipe"
    run_example("cifar10_recipe", ["--data-dir", str(root), "--proxy", "--max-epochs", "1",
                                   "--classes", "bird", "--configs", "base", "restart-m16", "--seed", "3",
                                   "--device", "cpu", "--out", str(out)], folder=STUDIES)
    result = json.loads(out.with_suffix(".json").read_text())
    assert [(r["config"], r["class"]) for r in result["rows"]] == [("base", "bird"),
                                                                 ("restart-m16", "bird")]
    assert result["rows"][1]["params"]["n_embeddings"] == 16 and result["rows"][1]["seed"] == 3
    assert result["rows"][1]["codes_used"] <= 16
    scores = result["rows"][0]["auroc"]
    assert {"l2/mean", "ssim/w11/mean/mean", "am/d2/mean", "ssim+am/w11/d2/mean",
            "am-rel/d0/mean", "ssim+am-rel/w11/d2/mean", "ssim-c+am/w11/d2/mean"} <= set(scores)
    assert all(0 <= v <= 1 for v in scores.values())
    assert "| restart-m16 (1 cl.) |" in out.with_suffix(".md").read_text()


def test_digits_one_vs_rest(tmp_path):
    out = tmp_path / "digits.json"
    run_example("digits_one_vs_rest", ["--max-epochs", "1", "--device", "cpu", "--digits", "0", "7",
                                       "--alignment", "relative", "--json", str(out)])
    result = json.loads(out.read_text())
    assert [r["digit"] for r in result["rows"]] == [0, 7]
    assert result["params"]["alignment"] == "relative" and result["params"]["max_epochs"] == 1
    assert result["bf16"] is False
    for key in ("ssim", "am", "ssim+am", "knn", "pca", "iforest"):
        assert result["mean"][key] == pytest.approx(np.mean([r[key] for r in result["rows"]]))
        assert all(0 <= r[key] <= 1 for r in result["rows"])


@STUDY
def test_pooling_bank_benchmark(tmp_path):
    out = tmp_path / "pb"
    run_example("pooling_bank", ["--data", "digits", "--units", "3", "--max-epochs", "1",
                                 "--bank-size", "50", "--device", "cpu", "--out", str(out)],
                folder=STUDIES)
    row = json.loads(out.with_suffix(".json").read_text())["rows"][0]
    assert row["unit"] == "3" and row["bank"] == 50
    assert len(row["auroc"]) == 7 * 5 and all(0 <= v <= 1 for v in row["auroc"].values())
    assert "| ssim+am/bank |" in out.with_suffix(".md").read_text()
    root = mtd_like_folder(tmp_path / "mtd")
    run_example("pooling_bank", ["--data", "mtd", "--data-dir", str(root), "--max-epochs", "1",
                                 "--device", "cpu", "--out", str(out)], folder=STUDIES)
    row = json.loads(out.with_suffix(".json").read_text())["rows"][0]
    assert set(row["pixel"]) == {"ssim", "am/squared", "am/relative", "am/bank", "ssim+am/squared",
                                 "ssim+am/relative", "ssim+am/bank"}
    assert "pooled pixel AUROC" in out.with_suffix(".md").read_text()


def test_benchmark_result_files_name_command_device_and_versions(tmp_path):
    """benchmarks/_common: <out>.json and <out>.md, with the command that reproduces the run."""
    out = tmp_path / "results" / "bf16"
    argv = ["--small", "--steps", "1", "--batch-size", "2", "--out", str(out)]
    run_example("bench_bf16", argv, folder=ROOT / "benchmarks")
    result = json.loads(out.with_suffix(".json").read_text())
    assert result["command"] == "python benchmarks/bench_bf16.py " + " ".join(argv)
    assert set(result["images_per_second"]) == {"fp32", "bf16"}
    md = out.with_suffix(".md").read_text()
    assert f"Produced by `{result['command']}` on {result['device']}; skvqad " in md
    assert f"torch {result['versions']['torch']}" in md


@STUDY
def test_ssim_filter_benchmark_times_the_same_filter(tmp_path):
    """Every alternative bench_ssim_filter times computes skvqad's filter (borders included)."""
    out = tmp_path / "ssim_filter"
    argv = ["--n-images", "2", "--size", "13", "--repeats", "1", "--device", "cpu", "--out", str(out)]
    rows = run_example("bench_ssim_filter", argv, folder=ROOT / "benchmarks")
    assert len(rows) == 4 and "grouped, separable (skvqad)" in rows
    for name, row in rows.items():
        assert row["max_abs_diff"] < 1e-5, name
        assert row["ms"] > 0
    md = out.with_suffix(".md").read_text()
    assert "| grouped, separable (skvqad) |" in md and "The whole `ssim` call" in md


@STUDY
def test_bf16_accuracy_benchmark(tmp_path, capsys, monkeypatch):
    """Units already in <out>_runs are read, not rerun; the others run the example in
    its precision; the summary compares bf16 with the spread between float32 seeds."""
    out = tmp_path / "bf16acc"
    runs = tmp_path / "bf16acc_runs"
    runs.mkdir()

    def unit(precision, seed, ssim, am, bf16=None):
        mean = {"ssim": ssim, "am": am, "ssim+am": 0.7}
        (runs / f"digits-{precision}-seed{seed}.json").write_text(json.dumps(
            {"rows": [{"digit": 0, **mean}], "mean": mean, "seconds": 1.0, "device": "CPU",
             "bf16": precision == "bf16" if bf16 is None else bf16, "versions": {"torch": "x"},
             "params": {"mixed_precision": precision == "bf16", "random_state": seed}}))

    unit("fp32", 0, 0.90, 0.5)
    unit("fp32", 1, 0.86, 0.5)
    unit("bf16", 0, 0.93, 0.52)
    unit("bf16", 5, 0.93, 0.52)  # no float32 run of seed 5 to compare with
    bench = ["--out", str(out), "--seeds", "0", "1", "--device", "cpu"]
    run_example("bf16_accuracy", bench, folder=STUDIES)
    assert capsys.readouterr().out.count("done before") == 3
    result = json.loads(out.with_suffix(".json").read_text())
    # bf16 of a seed right after its float32 run: a run cut short compares them first.
    assert [(r["precision"], r["seed"]) for r in result["runs"]] == [
        ("fp32", 0), ("bf16", 0), ("fp32", 1)]
    summary = result["summary"]["digits"]
    assert summary["fp32_seed_spread"]["ssim"] == pytest.approx(0.04)
    assert summary["bf16_minus_fp32"]["ssim"] == [pytest.approx(0.03)]
    assert summary["within_seed_noise"] == {"ssim": True, "am": False, "ssim+am": True}
    md = out.with_suffix(".md").read_text()
    assert "| bf16 - fp32, same seed | | +0.030 | +0.020 | +0.000 | |" in md
    run_example("bf16_accuracy", [*bench, "--bf16-seeds", "5"], folder=STUDIES)
    result = json.loads(out.with_suffix(".json").read_text())
    assert [(r["precision"], r["seed"]) for r in result["runs"]] == [
        ("fp32", 0), ("fp32", 1), ("bf16", 5)]
    summary = result["summary"]["digits"]
    assert summary["within_seed_noise"] == {"ssim": None, "am": None, "ssim+am": None}
    assert "| bf16 - fp32, same seed | | - | - | - | |" in out.with_suffix(".md").read_text()
    # A unit whose results were not run as its name says is refused.
    unit("bf16", 0, 0.93, 0.52, bf16=False)
    with pytest.raises(ValueError, match="bf16-seed0.json was run with other settings"):
        run_example("bf16_accuracy", bench, folder=STUDIES)
    with pytest.raises(ValueError, match=r"fp32-seed0.json was run with other settings \(\['max_epochs'"):
        run_example("bf16_accuracy", [*bench, "--digits-epochs", "3"], folder=STUDIES)

    # A unit that is missing runs the example, in the precision it names: the command
    # that the benchmark builds runs here in this process (as `python <script> <argv>`
    # would, without importing torch in two more interpreters).
    commands, real_run = [], subprocess.run

    def run_in_process(cmd, check=False, **kwargs):
        if not (isinstance(cmd, list) and cmd[0] == sys.executable):  # not the benchmark's
            return real_run(cmd, check=check, **kwargs)
        assert check, cmd
        commands.append(cmd)
        run_example(Path(cmd[1]).stem, cmd[2:])
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(subprocess, "run", run_in_process)
    root = cifar_like_folder(tmp_path / "cifar")
    argv = ["--out", str(out), "--cifar-dir", str(root), "--datasets", "cifar10-quick",
            "--seeds", "0", "--bf16-seeds", "0", "--cifar-epochs", "1", "--device", "cpu"]
    run_example("bf16_accuracy", argv, folder=STUDIES)
    result = json.loads(out.with_suffix(".json").read_text())
    assert [(r["precision"], r["dataset"]) for r in result["runs"]] == [
        ("fp32", "cifar10-quick"), ("bf16", "cifar10-quick")]
    for precision in ("fp32", "bf16"):
        rows = json.loads((runs / f"cifar10-quick-{precision}-seed0.json").read_text())["rows"]
        assert [row["bf16"] for row in rows] == [precision == "bf16"] * 3
    assert "--mixed-precision true" in result["runs"][1]["command"]
    assert [Path(c[1]).name for c in commands] == ["cifar10_one_vs_rest.py"] * 2
    assert result["summary"] == {}  # one float32 seed: no seed noise to compare with


@STUDY
def test_cifar10_score_fusion_benchmark(tmp_path):
    """SSIM and the AM fused per image, from the example's <class>.scores.npz: on test ranks,
    and on the training scores' distribution or standardization where the file keeps them."""
    rows = tmp_path / "rows"
    rows.mkdir()
    rng = np.random.default_rng(0)
    normal = np.r_[np.ones(20, bool), np.zeros(20, bool)]
    # SSIM catches the first half of the anomalies, the AM the second half: each alone
    # misses half of them, an image called as anomalous as its worse score misses none.
    ssim, am = rng.random(40) + 2, rng.random(40) + 2
    ssim[20:30] -= 2
    am[30:] -= 2
    columns = {k: rng.random(40).astype(np.float32)
               for k in ("ssim+am", "ssim+am-rel", "am-rel", "knn", "pca", "iforest")}
    train = {"train_ssim": rng.random(30) + 2, "train_am": rng.random(30) * 3 + 1.5,
             "train_am-rel": rng.random(30)}
    # Test images that score exactly as training images do count them as lower or the same.
    ssim[:8], am[:8] = train["train_ssim"][:8], train["train_am"][10:18]
    np.savez(rows / "cat.scores.npz", normal=normal, ssim=ssim.astype(np.float32),
             am=am.astype(np.float32), **columns,
             **{k: v.astype(np.float32) for k, v in train.items()})
    (rows / "cat.json").write_text(json.dumps({"class": "cat", "device": "CPU, 2 threads",
                                               "versions": {"torch": "9.9"}}))
    (rows / "deer.json").write_text("{}")  # a row from before the scores files
    # An older row: no training scores, so only the test-rank fusions.
    np.savez(rows / "bird.scores.npz", normal=normal, ssim=am.astype(np.float32),
             am=ssim.astype(np.float32), **columns)
    out = tmp_path / "fusion"
    argv = ["--rows-dir", str(rows), "--out", str(out)]
    run_example("cifar10_score_fusion", argv, folder=STUDIES)
    result = json.loads(out.with_suffix(".json").read_text())
    bird, cat = result["rows"]
    assert cat["class"] == "cat" and cat["n_test"] == 40 and cat["n_normal"] == 20
    assert cat["ssim"] == pytest.approx(roc_auc_score(normal, ssim)) and cat["ssim"] < 0.8
    assert cat["am"] == pytest.approx(roc_auc_score(normal, am)) and cat["am"] < 0.8
    assert cat["knn"] == pytest.approx(roc_auc_score(normal, columns["knn"]))
    assert cat["rank-min(ssim,am)"] == 1.0
    # The fusions, against scales made another way (no ties here).
    ranks = np.argsort(np.argsort(ssim)) + np.argsort(np.argsort(am))
    assert cat["rank-mean(ssim,am)"] == pytest.approx(roc_auc_score(normal, ranks))
    f32 = {k: np.float32(v) for k, v in train.items()}
    counts = [(f32[f"train_{k}"][:, None] <= np.float32(x)[None]).sum(axis=0)
              for k, x in (("ssim", ssim), ("am", am))]
    assert cat["ecdf-min(ssim,am)"] == pytest.approx(roc_auc_score(normal, np.minimum(*counts)))
    assert cat["ecdf-mean(ssim,am)"] == pytest.approx(roc_auc_score(normal, counts[0] + counts[1]))
    z = [(np.float32(x) - f32[f"train_{k}"].mean()) / f32[f"train_{k}"].std()
         for k, x in (("ssim", ssim), ("am", am))]
    assert cat["z-mean(ssim,am)"] == pytest.approx(roc_auc_score(normal, z[0] + z[1]))
    assert cat["z-min(ssim,am)"] == pytest.approx(roc_auc_score(normal, np.minimum(*z)))
    assert cat["z-mean(ssim,am)"] != pytest.approx(cat["rank-mean(ssim,am)"])
    assert cat["below_training"]["ssim"] == pytest.approx(np.mean(counts[0] == 0))
    assert cat["has_train_scores"] and not bird["has_train_scores"]
    assert "rank-min(ssim,am-rel)" in bird and not any(k.startswith(("ecdf", "z-")) for k in bird)
    # Means over the classes that have each fusion, and over those with training scores.
    assert result["means"]["ssim"] == pytest.approx((bird["ssim"] + cat["ssim"]) / 2)
    assert result["means"]["ecdf-min(ssim,am)"] == cat["ecdf-min(ssim,am)"]
    assert result["means_classes_with_train_scores"]["ssim"] == cat["ssim"]
    assert result["rows_without_scores"] == ["deer"]
    md = out.with_suffix(".md").read_text()
    assert f"Produced by `{result['command']}`" in md and "CPU, 2 threads, torch 9.9" in md
    assert "| min of SSIM, AM on training ECDF | – | " in md
    assert "| mean over the 1 with training scores |" in md
    assert "left out: deer." in md
    # A file that lacks a score is named, and an empty folder is refused.
    np.savez(rows / "dog.scores.npz", normal=normal, ssim=ssim)
    with pytest.raises(ValueError, match="dog.scores.npz has no am, am-rel"):
        run_example("cifar10_score_fusion", argv, folder=STUDIES)
    with pytest.raises(SystemExit, match="no <class>.scores.npz"):
        run_example("cifar10_score_fusion", ["--rows-dir", str(tmp_path / "none"), "--out", str(out)],
                    folder=STUDIES)


@STUDY
def test_cifar10_score_contrast_benchmark(tmp_path):
    """Spearman's rho of each score with image contrast, and each score minus its contrast
    line fitted on the training images, from the example's <class>.scores.npz."""
    root = cifar_like_folder(tmp_path / "cifar")
    test = np.stack([np.asarray(PIL.open(p).convert("RGB"))
                     for name in ("airplane", "automobile", "bird")
                     for p in sorted((root / "test" / name).iterdir())])
    train = np.stack([np.asarray(PIL.open(p).convert("RGB"))
                      for p in sorted((root / "train" / "bird").iterdir())])
    c, train_c = test.reshape(12, -1).std(axis=1) / 255, train.reshape(6, -1).std(axis=1) / 255
    normal = np.r_[np.zeros(8, bool), np.ones(4, bool)]
    # A score made of contrast (which the training scores show) plus a class signal.
    ssim = 3 * c + c.std() * normal
    rng = np.random.default_rng(0)
    rows = tmp_path / "rows"
    rows.mkdir()
    np.savez(rows / "bird.scores.npz", normal=normal, ssim=ssim, am=rng.random(12),
             **{"am-rel": -c, "train_ssim": 3 * train_c + 0.25, "train_am": rng.random(6),
                "train_am-rel": rng.random(6)})
    out = tmp_path / "contrast"
    argv = ["--data-dir", str(root), "--rows-dir", str(rows), "--out", str(out)]
    run_example("cifar10_score_contrast", argv, folder=STUDIES)
    (row,) = json.loads(out.with_suffix(".json").read_text())["rows"]
    assert row["class"] == "bird"
    assert row["contrast_normal"] == pytest.approx(c[normal].mean())
    assert row["contrast_auroc"] == pytest.approx(roc_auc_score(normal, c))
    assert row["ssim"] == pytest.approx(roc_auc_score(normal, ssim)) and row["ssim"] < 0.9
    assert row["spearman_am-rel"] == pytest.approx(-1.0)
    # The contrast line fitted on the training images removes the contrast: the class is left.
    assert row["ssim_adjusted"] == 1.0
    md = out.with_suffix(".md").read_text()
    assert "| ρ(SSIM, contrast) |" in md and "Produced by `python benchmarks/" in md
    # Scores of other test images (another class's mask) are refused.
    np.savez(rows / "bird.scores.npz", normal=~normal, ssim=ssim, am=ssim, **{"am-rel": ssim})
    with pytest.raises(ValueError, match="other test images"):
        run_example("cifar10_score_contrast", argv, folder=STUDIES)


def test_cifar10_model_dir_and_rows_without_the_new_columns(tmp_path, capsys):
    root = cifar_like_folder(tmp_path / "cifar")
    models, rows = tmp_path / "models", tmp_path / "rows"
    argv = ["--data-dir", str(root), "--quick", "--max-epochs", "1", "--device", "cpu",
            "--n-embeddings", "16", "--classes", "bird", "--model-dir", str(models),
            "--rows-dir", str(rows), "--json", str(tmp_path / "a.json")]
    run_example("cifar10_one_vs_rest", argv)
    assert sorted(p.name for p in models.iterdir()) == ["bird.checkpoint", "bird.json", "bird.skvqad"]
    first = json.loads((tmp_path / "a.json").read_text())["rows"][0]
    # The undilated columns are calibrated again (the AM's figures move with the radius), and
    # the detector's own radius (the default, 2) is what the row records.
    assert first["score_calibration_d0"]["am"] != first["score_calibration"]["am"]
    assert first["params"]["dilation_radius"] == 2
    # A kept model is loaded, not trained again: the same row, the saved fit time.
    (rows / "bird.json").unlink()
    run_example("cifar10_one_vs_rest", argv)
    again = json.loads((tmp_path / "a.json").read_text())["rows"][0]
    timings = ("score_seconds", "baseline_seconds")
    assert {k: v for k, v in again.items() if k not in timings} == {
        k: v for k, v in first.items() if k not in timings}
    # A row made before the prior's columns existed shows '-' in them.
    old = json.loads((rows / "bird.json").read_text())
    for key in ("prior", "z(am,prior)", "z(ssim+am,prior)", "z(ssim,am,prior)", "am-d0",
                "prior-d0", "z(am,prior)-d0", "z(ssim+am,prior)-d0", "z(ssim,am,prior)-d0"):
        del old[key]
    (rows / "bird.json").write_text(json.dumps(old))
    run_example("cifar10_one_vs_rest", argv + ["--markdown", str(tmp_path / "a.md")])
    md = (tmp_path / "a.md").read_text()
    assert "| bird |" in md and "| - | - | - | - | - |" in md
    # A model trained with other weights parameters is refused.
    with pytest.raises(SystemExit, match="other parameters"):
        run_example("cifar10_one_vs_rest", [a if a != "16" else "8" for a in argv[:-4]])

"""Tests of :mod:`skvqad.datasets` on tiny fake trees of every layout; no network."""

import hashlib
import io
import os
import pickle
import subprocess
import sys
import tarfile
import urllib.request

import joblib
import numpy as np
import pytest

from skvqad import datasets
from skvqad.datasets import (
    fetch_cifar10,
    get_data_home,
    load_folder_with_masks,
    load_image_folder,
    load_mvtec_ad,
    load_ucsd_ped,
)

try:  # Pillow is optional: only the tests that write or read image files need it
    from PIL import Image
except ImportError:
    Image = None

needs_pil = pytest.mark.skipif(Image is None, reason="Pillow is not installed")

H, W = 8, 10  # size of the fake images: height != width catches swapped axes


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    """Fail any download that is not a local file, and keep the data home in tmp_path."""
    real_urlopen = urllib.request.urlopen

    def local_only(url, *args, **kwargs):
        assert str(url).startswith("file:"), f"a test tried to download {url}"
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", local_only)
    monkeypatch.setenv("SKVQAD_DATA", str(tmp_path / "env_data_home"))


def save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return path


def gray(value=0, size=(H, W)):
    return np.full(size, value, dtype=np.uint8)


def rgb(value=0, size=(H, W)):
    return np.full(size + (3,), value, dtype=np.uint8)


def spot_mask(value=255, size=(H, W)):
    """A mask with a defect on rows 2-3, columns 4-6."""
    mask = np.zeros(size, dtype=np.uint8)
    mask[2:4, 4:7] = value
    return mask


def expected_spot(scale=2):
    """Where :func:`spot_mask` lands after resizing 8x10 to (8 * scale, 10 * scale), nearest."""
    mask = np.zeros((H * scale, W * scale), dtype=bool)
    mask[2 * scale : 4 * scale, 4 * scale : 7 * scale] = True
    return mask


# ------------------------------------------------------------------ import
def test_import_loads_neither_pillow_nor_torch_nor_matplotlib():
    code = (
        "import sys, skvqad.datasets; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'PIL', 'torch', 'matplotlib'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_missing_pillow_says_how_to_install(monkeypatch, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(b"never read")
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r'pip install "skvqad\[images\]"'):
        load_image_folder(tmp_path)


# --------------------------------------------------------------- data home
def test_get_data_home(monkeypatch, tmp_path):
    given = get_data_home(tmp_path / "a" / "b")
    assert given == tmp_path / "a" / "b" and given.is_dir()
    assert get_data_home() == tmp_path / "env_data_home" and get_data_home().is_dir()
    monkeypatch.delenv("SKVQAD_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert get_data_home() == tmp_path / "home" / "skvqad_data"
    assert (tmp_path / "home" / "skvqad_data").is_dir()


# ----------------------------------------------------------------- CIFAR-10
CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def cifar_batch(n, seed):
    """A batch in the official format: rows of R, then G, then B 32x32 planes."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    data = images.transpose(0, 3, 1, 2).reshape(n, 3072)
    labels = rng.integers(0, 10, size=n).tolist()
    return {b"batch_label": b"fake", b"labels": labels, b"data": data}, images, labels


@pytest.fixture
def fake_cifar(tmp_path, monkeypatch):
    """A tiny CIFAR-10 archive served from a file:// URL; returns the expected arrays."""
    members, train, train_labels = {}, [], []
    for i in range(1, 6):
        batch, images, labels = cifar_batch(2, seed=i)
        members[f"data_batch_{i}"] = batch
        train.append(images)
        train_labels += labels
    members["test_batch"], test, test_labels = cifar_batch(3, seed=9)
    members["batches.meta"] = {b"label_names": [n.encode() for n in CIFAR_NAMES], b"num_vis": 3072}
    archive = tmp_path / "server" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        for name, content in members.items():
            payload = pickle.dumps(content)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    monkeypatch.setattr(datasets.cifar10, "CIFAR10_URL", archive.as_uri())
    monkeypatch.setattr(datasets.cifar10, "CIFAR10_MD5", hashlib.md5(archive.read_bytes()).hexdigest())
    return dict(
        archive=archive,
        X_train=np.concatenate(train),
        y_train=np.array(train_labels),
        X_test=test,
        y_test=np.array(test_labels),
    )


def test_fetch_cifar10_downloads_once_and_parses_the_official_format(fake_cifar, tmp_path, monkeypatch):
    home = tmp_path / "home"
    data = fetch_cifar10(data_home=home)
    assert sorted(os.listdir(home)) == ["cifar-10-python.tar.gz"]  # no .part left
    assert data.X_train.shape == (10, 32, 32, 3) and data.X_train.dtype == np.uint8
    assert data.X_test.shape == (3, 32, 32, 3) and data.X_test.dtype == np.uint8
    np.testing.assert_array_equal(data.X_train, fake_cifar["X_train"])
    np.testing.assert_array_equal(data.X_test, fake_cifar["X_test"])
    assert data.y_train.dtype == np.int64 and data.y_test.dtype == np.int64
    np.testing.assert_array_equal(data.y_train, fake_cifar["y_train"])
    np.testing.assert_array_equal(data.y_test, fake_cifar["y_test"])
    assert data.target_names == CIFAR_NAMES
    assert "CIFAR-10" in data.DESCR

    # The second call reads the cache: the URL now points nowhere.
    monkeypatch.setattr(datasets.cifar10, "CIFAR10_URL", (tmp_path / "gone.tar.gz").as_uri())
    again = fetch_cifar10(data_home=home, download=False)
    np.testing.assert_array_equal(again.X_train, data.X_train)
    assert fetch_cifar10(data_home=home).y_test.tolist() == data.y_test.tolist()


def test_fetch_cifar10_uses_the_default_data_home(fake_cifar, tmp_path):
    fetch_cifar10()
    assert (tmp_path / "env_data_home" / "cifar-10-python.tar.gz").is_file()


def test_fetch_cifar10_wrong_md5_keeps_nothing(fake_cifar, tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.cifar10, "CIFAR10_MD5", "0" * 32)
    home = tmp_path / "home"
    with pytest.raises(OSError, match=r"md5 .* not the expected 0{32}.*Nothing was saved.*by hand"):
        fetch_cifar10(data_home=home)
    assert os.listdir(home) == []


def test_fetch_cifar10_failed_download_keeps_nothing(fake_cifar, tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.cifar10, "CIFAR10_URL", (tmp_path / "missing.tar.gz").as_uri())
    home = tmp_path / "home"
    with pytest.raises(OSError, match=r"failed.*download the file by hand to .*cifar-10-python"):
        fetch_cifar10(data_home=home)
    assert os.listdir(home) == []


def test_fetch_cifar10_without_download(fake_cifar, tmp_path):
    with pytest.raises(OSError, match=r"download=False.*by hand"):
        fetch_cifar10(data_home=tmp_path / "home", download=False)


def test_fetch_cifar10_corrupt_cache_is_not_unpickled(fake_cifar, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "cifar-10-python.tar.gz").write_bytes(b"truncated")

    def no_unpickling(*args, **kwargs):
        raise AssertionError("unpickled a file whose md5 is wrong")

    monkeypatch.setattr(pickle, "load", no_unpickling)
    with pytest.raises(OSError, match=r"corrupt.*Delete it, or .*download=True"):
        fetch_cifar10(data_home=home, download=False)
    assert (home / "cifar-10-python.tar.gz").read_bytes() == b"truncated"  # kept: not asked


def test_fetch_cifar10_replaces_a_corrupt_cache_when_it_may_download(fake_cifar, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "cifar-10-python.tar.gz").write_bytes(b"truncated")
    with pytest.warns(UserWarning, match="corrupt or incomplete.*downloading it anew"):
        data = fetch_cifar10(data_home=home)
    np.testing.assert_array_equal(data.X_test, fake_cifar["X_test"])
    assert (home / "cifar-10-python.tar.gz").read_bytes() == fake_cifar["archive"].read_bytes()


def test_a_data_home_that_is_a_file_is_a_clear_error(fake_cifar, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="data_home .*file is a file, not a folder"):
        fetch_cifar10(data_home=tmp_path / "file")


def test_pillow_errors_name_the_file(tmp_path, monkeypatch):
    PIL = pytest.importorskip("PIL.Image")
    save(tmp_path / "train" / "a" / "big.png", gray(10, size=(64, 64)))
    monkeypatch.setattr(PIL, "MAX_IMAGE_PIXELS", 100)  # 4096 pixels: a "decompression bomb"
    with pytest.raises(OSError, match=r"big\.png \(DecompressionBombError"):
        load_image_folder(tmp_path, split="train")


# ------------------------------------------------------------ image folder
@pytest.fixture
def image_tree(tmp_path):
    """root/{train,test}/{cat,dog}/ with grayscale files of several extensions and junk."""
    root = tmp_path / "images"
    save(root / "train" / "dog" / "b.png", gray(30))
    save(root / "train" / "dog" / "a.BMP", gray(20))
    save(root / "train" / "cat" / "c.tif", gray(10))
    save(root / "train" / "cat" / "a.PNG", gray(5))
    save(root / "train" / "cat" / "d.JPG", gray(40))
    (root / "train" / "cat" / "._a.png").write_bytes(b"resource fork")
    (root / "train" / "cat" / "Thumbs.db").write_bytes(b"junk")
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    (root / "train" / ".hidden").mkdir()
    save(root / "test" / "cat" / "x.png", gray(1))
    save(root / "test" / "dog" / "y.png", gray(2))
    save(root / "test" / "eel" / "z.png", gray(3))
    return root


@needs_pil
def test_load_image_folder(image_tree):
    data = load_image_folder(image_tree, split="train")
    assert data.images.shape == (5, H, W) and data.images.dtype == np.uint8
    assert data.target_names == ["cat", "dog"]
    assert data.target.dtype == np.int64 and data.target.tolist() == [0, 0, 0, 1, 1]
    names = [os.path.basename(f) for f in data.filenames]
    assert names == ["a.PNG", "c.tif", "d.JPG", "a.BMP", "b.png"]
    assert all(isinstance(f, str) for f in data.filenames.tolist())
    assert data.filenames[0] == str(image_tree / "train" / "cat" / "a.PNG")
    assert data.images[[0, 1, 3, 4], 0, 0].tolist() == [5, 10, 20, 30]
    assert abs(int(data.images[2].mean()) - 40) <= 2  # JPEG


@needs_pil
def test_load_image_folder_classes_and_layout_without_split(image_tree):
    data = load_image_folder(image_tree, split="test", classes=["eel", "cat"])
    assert data.target_names == ["cat", "eel"] and data.target.tolist() == [0, 1]
    assert data.images[:, 0, 0].tolist() == [1, 3]
    data = load_image_folder(image_tree / "test", classes="dog")
    assert data.target_names == ["dog"] and data.images.shape == (1, H, W)
    with pytest.raises(ValueError, match=r"Unknown classes \['bird'\].*\['cat', 'dog', 'eel'\]"):
        load_image_folder(image_tree, split="test", classes=["cat", "bird"])
    with pytest.raises(FileNotFoundError, match=r"no split 'val'.*'test', 'train'"):
        load_image_folder(image_tree, split="val")


@needs_pil
def test_load_image_folder_color_modes(tmp_path):
    root = tmp_path / "colors"
    save(root / "a" / "1.png", rgb(50))
    save(root / "a" / "2.png", rgb(60))
    data = load_image_folder(root)
    assert data.images.shape == (2, H, W, 3) and data.images.dtype == np.uint8
    save(root / "b" / "3.png", gray(70))
    with pytest.raises(ValueError, match=r"mix grayscale and color.*3\.png.*color_mode="):
        load_image_folder(root)
    assert load_image_folder(root, color_mode="rgb").images.shape == (3, H, W, 3)
    as_gray = load_image_folder(root, color_mode="grayscale").images
    assert as_gray.shape == (3, H, W) and as_gray[2, 0, 0] == 70
    with pytest.raises(ValueError, match="color_mode must be"):
        load_image_folder(root, color_mode="RGB")


@needs_pil
def test_load_image_folder_sizes(tmp_path):
    root = tmp_path / "sizes"
    save(root / "a" / "1.png", gray(10))
    save(root / "a" / "2.png", gray(10, size=(12, 6)))
    with pytest.raises(ValueError, match=r"differ in size.*1\.png is 8x10.*2\.png is 12x6.*image_size"):
        load_image_folder(root)
    assert load_image_folder(root, image_size=4).images.shape == (2, 4, 4)
    data = load_image_folder(root, image_size=(5, 7))
    assert data.images.shape == (2, 5, 7) and np.all(data.images == 10)
    for bad in [0, (4,), (4, 0), 2.5, True, "32"]:
        with pytest.raises(ValueError, match="image_size must be"):
            load_image_folder(root, image_size=bad)


@needs_pil
def test_load_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image_folder(tmp_path / "nowhere")
    root = tmp_path / "flat"
    save(root / "x.png", gray())
    with pytest.raises(ValueError, match=r"no class sub-folders.*1 image files directly"):
        load_image_folder(root)
    (root / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty holds no images"):
        load_image_folder(root)
    (root / "empty" / "x.png").write_bytes(b"not a png")
    with pytest.raises(OSError, match=r"Cannot read the image file .*x\.png"):
        load_image_folder(root)


@needs_pil
def test_load_image_folder_in_parallel_matches_serial(tmp_path):
    root = tmp_path / "many"
    for i in range(520):
        save(root / ("a" if i % 2 else "b") / f"{i:04d}.png", gray(i % 256, size=(2, 3)))
    serial = load_image_folder(root)
    with joblib.parallel_config(backend="threading"):
        parallel = load_image_folder(root, n_jobs=2)
    np.testing.assert_array_equal(parallel.images, serial.images)
    np.testing.assert_array_equal(parallel.filenames, serial.filenames)


# -------------------------------------------------------------- MVTec AD
@pytest.fixture
def mvtec(tmp_path):
    root = tmp_path / "mvtec"
    cat = root / "widget"
    for i in range(3):
        save(cat / "train" / "good" / f"{i:03d}.png", rgb(10 + i))
    save(cat / "test" / "good" / "000.png", rgb(100))
    save(cat / "test" / "good" / "001.png", rgb(101))
    save(cat / "test" / "crack" / "001.png", rgb(121))
    save(cat / "test" / "crack" / "000.png", rgb(120))
    save(cat / "test" / "scratch" / "000.png", rgb(130))
    save(cat / "ground_truth" / "crack" / "000_mask.png", spot_mask())
    save(cat / "ground_truth" / "crack" / "001_mask.png", gray(0))
    save(cat / "ground_truth" / "scratch" / "000_mask.png", spot_mask())
    (cat / "test" / "crack" / "Thumbs.db").write_bytes(b"junk")
    return root


@needs_pil
def test_load_mvtec_ad(mvtec):
    data = load_mvtec_ad(mvtec, "widget", image_size=(2 * H, 2 * W))
    assert data.X_train.shape == (3, 2 * H, 2 * W, 3) and data.X_train.dtype == np.uint8
    assert data.X_test.shape == (5, 2 * H, 2 * W, 3)
    assert data.defect_types.tolist() == ["crack", "crack", "good", "good", "scratch"]
    assert data.anomalous.dtype == np.bool_
    assert data.anomalous.tolist() == [True, True, False, False, True]
    assert [os.path.basename(f) for f in data.filenames_test] == ["000.png", "001.png"] * 2 + ["000.png"]
    assert data.X_test[:, 0, 0, 0].tolist() == [120, 121, 100, 101, 130]
    assert data.masks.shape == (5, 2 * H, 2 * W) and data.masks.dtype == np.bool_
    np.testing.assert_array_equal(data.masks[0], expected_spot())
    np.testing.assert_array_equal(data.masks[4], expected_spot())
    assert not data.masks[1:4].any()


@needs_pil
def test_load_mvtec_ad_grayscale_category(mvtec):
    cat = mvtec / "screw"
    save(cat / "train" / "good" / "000.png", gray(1))
    save(cat / "test" / "good" / "000.png", gray(2))
    save(cat / "test" / "bent" / "000.png", gray(3))
    save(cat / "ground_truth" / "bent" / "000_mask.png", spot_mask())
    data = load_mvtec_ad(mvtec, "screw", image_size=None)
    assert data.X_train.shape == (1, H, W) and data.X_test.shape == (2, H, W)
    assert data.masks[0].sum() == 6 and data.anomalous.tolist() == [True, False]
    assert load_mvtec_ad(mvtec, "screw", image_size=4, color_mode="rgb").X_test.shape == (2, 4, 4, 3)


@needs_pil
def test_load_mvtec_ad_errors(mvtec):
    cat = mvtec / "widget"
    with pytest.raises(FileNotFoundError, match=r"no category 'bottle'.*'widget'"):
        load_mvtec_ad(mvtec, "bottle")
    save(cat / "ground_truth" / "scratch" / "001_mask.png", spot_mask())
    with pytest.raises(ValueError, match=r"mask .*scratch.001_mask\.png has no test image"):
        load_mvtec_ad(mvtec, "widget")
    save(cat / "test" / "scratch" / "001.png", rgb(0, size=(H + 1, W)))
    with pytest.raises(ValueError, match=r"mask .*001_mask\.png is 8x10.*image .*001\.png is 9x10"):
        load_mvtec_ad(mvtec, "widget", image_size=8)
    save(cat / "test" / "scratch" / "002.png", rgb(0))
    with pytest.raises(FileNotFoundError, match=r"image .*002\.png has no mask: expected .*002_mask\.png"):
        load_mvtec_ad(mvtec, "widget")


# ---------------------------------------------------------------- UCSD Ped
@pytest.fixture
def ucsd(tmp_path):
    """UCSDped1 with two training sequences and two test sequences, one with masks."""
    root = tmp_path / "ucsd"
    ped = root / "UCSDped1"
    for n in range(1, 4):
        save(ped / "Train" / "Train001" / f"{n:03d}.tif", gray(n))
    for n in range(1, 3):
        save(ped / "Train" / "Train002" / f"{n:03d}.tif", gray(10 + n))
    (ped / "Train" / "Train001" / "._001.tif").write_bytes(b"junk")
    (ped / "Train" / "Train002" / "Thumbs.db").write_bytes(b"junk")
    for n in range(1, 5):
        save(ped / "Test" / "Test001" / f"{n:03d}.tif", gray(100 + n))
        save(ped / "Test" / "Test001_gt" / f"{n:03d}.bmp", spot_mask() if n >= 3 else gray(0))
    for n in range(1, 6):
        save(ped / "Test" / "Test002" / f"{n:03d}.tif", gray(200 + n))
    (ped / "Test" / "Test002" / ".DS_Store").write_bytes(b"junk")
    (ped / "UCSDped1.m").write_text(
        "TestDataset = {};\n"
        "TestDataset.gt_frame{1} = [1:2];  % overridden by the masks\n"
        "TestDataset.gt_frame{2} = [1:2, 4:5];\n"
    )
    return root


@needs_pil
def test_load_ucsd_ped(ucsd):
    data = load_ucsd_ped(ucsd, image_size=(2 * H, 2 * W))
    assert data.X_train.shape == (5, 2 * H, 2 * W) and data.X_train.dtype == np.uint8
    assert data.X_train[:, 0, 0].tolist() == [1, 2, 3, 11, 12]
    assert data.X_test.shape == (9, 2 * H, 2 * W)
    assert data.X_test[:, 0, 0].tolist() == [101, 102, 103, 104, 201, 202, 203, 204, 205]
    assert data.anomalous.tolist() == [False, False, True, True, True, True, False, True, True]
    assert data.has_mask.tolist() == [True] * 4 + [False] * 5
    assert data.masks.shape == (9, 2 * H, 2 * W) and data.masks.dtype == np.bool_
    np.testing.assert_array_equal(data.masks[2], expected_spot())
    assert not data.masks[[0, 1, 4, 5, 6, 7, 8]].any()
    assert data.sequence_test.tolist() == ["Test001"] * 4 + ["Test002"] * 5
    assert all("_gt" not in f and f.endswith(".tif") for f in data.filenames_test)
    # root may also be the subset folder itself
    same = load_ucsd_ped(ucsd / "UCSDped1", "ped1", image_size=None)
    assert same.X_test.shape == (9, H, W)
    np.testing.assert_array_equal(same.anomalous, data.anomalous)


@needs_pil
def test_load_ucsd_ped_ranges_file_in_test_folder_and_ped2(ucsd):
    ped2 = ucsd / "UCSDped2"
    (ucsd / "UCSDped1").rename(ped2)
    (ped2 / "UCSDped1.m").unlink()
    (ped2 / "Test" / "UCSDped2.m").write_text("TestDataset.gt_frame{2} = [2:3 5];\n")
    data = load_ucsd_ped(ucsd, "ped2", image_size=4)
    assert data.anomalous[4:].tolist() == [False, True, True, False, True]
    with pytest.raises(FileNotFoundError, match=r"No UCSDped1 data"):
        load_ucsd_ped(ucsd, "ped1")
    with pytest.raises(ValueError, match="subset must be"):
        load_ucsd_ped(ucsd, "ped3")


@needs_pil
def test_load_ucsd_ped_errors(ucsd):
    ped = ucsd / "UCSDped1"
    (ped / "UCSDped1.m").write_text("TestDataset.gt_frame{2} = [4:9];\n")
    with pytest.warns(UserWarning, match=r"4:9 .*Test002, which has 5 frames"):
        assert load_ucsd_ped(ucsd, image_size=4).anomalous[-2:].all()
    (ped / "UCSDped1.m").write_text("TestDataset.gt_frame{1} = [1:2];\n")
    with pytest.raises(ValueError, match=r"Test002 has no labels.*no gt_frame\{2\}"):
        load_ucsd_ped(ucsd, image_size=4)
    (ped / "UCSDped1.m").unlink()
    with pytest.raises(ValueError, match=r"Test002 has no labels.*no UCSDped1\.m file"):
        load_ucsd_ped(ucsd, image_size=4)
    save(ped / "Test" / "Test001_gt" / "005.bmp", gray(0))
    with pytest.raises(ValueError, match=r"mask .*Test001_gt.005\.bmp has no frame"):
        load_ucsd_ped(ucsd, image_size=4)
    (ped / "Test" / "Test001_gt" / "004.bmp").unlink()
    with pytest.raises(FileNotFoundError, match=r"Test001.004\.tif has no mask.*numbered 4"):
        load_ucsd_ped(ucsd, image_size=4)


@needs_pil
@pytest.mark.parametrize("variant", ["frame_prefix", "jpg_frames", "png_frames_and_masks"])
def test_load_ucsd_ped_reads_the_copies_in_circulation(ucsd, variant):
    want = load_ucsd_ped(ucsd, image_size=None)
    seq, gt = ucsd / "UCSDped1" / "Test" / "Test001", ucsd / "UCSDped1" / "Test" / "Test001_gt"
    for n in range(1, 5):
        if variant == "frame_prefix":  # Ped2's Test006_gt, ...: frameNNN.bmp
            (gt / f"{n:03d}.bmp").rename(gt / f"frame{n:03d}.bmp")
        else:  # frames re-encoded (.jpg is lossy: compare labels and masks only)
            ext = ".jpg" if variant == "jpg_frames" else ".png"
            frame = seq / f"{n:03d}.tif"
            Image.open(frame).save(frame.with_suffix(ext))
            frame.unlink()
            if variant == "png_frames_and_masks":
                mask = gt / f"{n:03d}.bmp"
                Image.open(mask).save(mask.with_suffix(".png"))
                mask.unlink()
    got = load_ucsd_ped(ucsd, image_size=None)
    np.testing.assert_array_equal(got.anomalous, want.anomalous)
    np.testing.assert_array_equal(got.masks, want.masks)
    np.testing.assert_array_equal(got.has_mask, want.has_mask)
    if variant != "jpg_frames":
        np.testing.assert_array_equal(got.X_test, want.X_test)


@needs_pil
def test_load_ucsd_ped_still_refuses_real_mismatches(ucsd):
    gt = ucsd / "UCSDped1" / "Test" / "Test001_gt"
    (gt / "002.bmp").rename(gt / "frame002.bmp")
    save(gt / "002.png", gray(0))  # a second mask of frame 2
    with pytest.raises(ValueError, match="both have frame number 2"):
        load_ucsd_ped(ucsd, image_size=4)
    (gt / "002.png").unlink()
    save(gt / "frame003.bmp", gray(0, size=(H + 1, W)))  # replaces 003.bmp's number: a clash
    with pytest.raises(ValueError, match="both have frame number 3"):
        load_ucsd_ped(ucsd, image_size=4)
    (gt / "003.bmp").unlink()
    with pytest.raises(ValueError, match=r"frame003\.bmp is .* pixels .*must have the size"):
        load_ucsd_ped(ucsd, image_size=4)


# ------------------------------------------------------ folders with masks
@pytest.fixture
def mtd(tmp_path):
    """The Magnetic Tile Defect layout: MT_<class>/Imgs/<name>.jpg with <name>.png beside."""
    root = tmp_path / "mtd"
    save(root / "MT_Free" / "Imgs" / "b.jpg", gray(90, size=(12, 6)))
    save(root / "MT_Free" / "Imgs" / "b.png", gray(0, size=(12, 6)))
    save(root / "MT_Free" / "Imgs" / "a.jpg", gray(80))  # no mask: fine for normal images
    save(root / "MT_Blowhole" / "Imgs" / "x.jpg", gray(100))
    save(root / "MT_Blowhole" / "Imgs" / "x.png", spot_mask())
    save(root / "MT_Crack" / "Imgs" / "y.jpg", gray(110))
    soft = spot_mask(200)
    soft[5, :] = 100  # a soft edge, below the default threshold
    save(root / "MT_Crack" / "Imgs" / "y.png", soft)
    return root


@needs_pil
def test_load_folder_with_masks_mtd_layout(mtd):
    data = load_folder_with_masks(
        mtd / "MT_Free" / "Imgs",
        [mtd / "MT_Blowhole" / "Imgs", str(mtd / "MT_Crack" / "Imgs")],
        image_size=(2 * H, 2 * W),
    )
    assert data.images.shape == (4, 2 * H, 2 * W) and data.images.dtype == np.uint8
    assert data.defect_types.tolist() == ["good", "good", "MT_Blowhole", "MT_Crack"]
    assert data.anomalous.tolist() == [False, False, True, True]
    assert [os.path.basename(f) for f in data.filenames] == ["a.jpg", "b.jpg", "x.jpg", "y.jpg"]
    assert data.masks.shape == (4, 2 * H, 2 * W) and data.masks.dtype == np.bool_
    assert not data.masks[:2].any()
    np.testing.assert_array_equal(data.masks[2], expected_spot())
    np.testing.assert_array_equal(data.masks[3], expected_spot())  # the soft edge is below 127
    low = load_folder_with_masks([], mtd / "MT_Crack" / "Imgs", image_size=(2 * H, 2 * W), mask_threshold=50)
    assert low.masks[0].sum() == expected_spot().sum() + 2 * 2 * W  # now with row 5
    assert low.defect_types.tolist() == ["MT_Crack"]


@needs_pil
def test_load_folder_with_masks_mask_dir_and_suffix(tmp_path):
    images, masks = tmp_path / "defects", tmp_path / "labels"
    save(images / "p.png", rgb(7))
    save(masks / "p.png", spot_mask())
    save(tmp_path / "ok" / "q.png", rgb(8))
    data = load_folder_with_masks(tmp_path / "ok", images, image_size=None, mask_dir=masks)
    assert data.images.shape == (2, H, W, 3)
    assert data.defect_types.tolist() == ["good", "defects"]
    assert data.masks[1].sum() == 6 and not data.masks[0].any()
    with pytest.raises(ValueError, match="mask_dir has 2 folders but anomalous_dirs has 1"):
        load_folder_with_masks(None, images, mask_dir=[masks, masks])

    beside = tmp_path / "beside"
    save(beside / "r.png", gray(9))
    save(beside / "r_mask.png", spot_mask())
    data = load_folder_with_masks(None, beside, image_size=None, mask_suffix="_mask.png")
    assert [os.path.basename(f) for f in data.filenames] == ["r.png"]
    assert data.masks[0].sum() == 6
    match = r"holds no images \(files ending with mask_suffix='\.png'.*mask_dir"
    with pytest.raises(ValueError, match=match):
        load_folder_with_masks(None, beside)


@needs_pil
def test_load_folder_with_masks_errors(mtd):
    blowhole = mtd / "MT_Blowhole" / "Imgs"
    with pytest.raises(ValueError, match="both empty"):
        load_folder_with_masks([], None)
    for bad in [-1, 255, 1.5]:
        with pytest.raises(ValueError, match="mask_threshold must be"):
            load_folder_with_masks(None, blowhole, mask_threshold=bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_folder_with_masks(None, mtd / "MT_Fray" / "Imgs")
    save(blowhole / "z.png", spot_mask())
    with pytest.raises(ValueError, match=r"mask .*z\.png has no image beside it"):
        load_folder_with_masks(None, blowhole)
    save(blowhole / "z.jpg", gray(0, size=(4, 4)))
    with pytest.raises(ValueError, match=r"mask .*z\.png is 8x10.*image .*z\.jpg is 4x4"):
        load_folder_with_masks(None, blowhole)
    save(blowhole / "w.jpg", gray(0))
    with pytest.raises(FileNotFoundError, match=r"image .*w\.jpg has no mask: expected .*w\.png"):
        load_folder_with_masks(None, blowhole)


@needs_pil
def test_16_bit_images_are_scaled_not_clipped(tmp_path):
    from skvqad.datasets import load_image_folder

    path = tmp_path / "a" / "x.png"
    path.parent.mkdir(parents=True)
    Image.fromarray(np.array([[0, 1000, 30000, 65535]], dtype=np.uint16)).save(path)
    np.testing.assert_array_equal(load_image_folder(tmp_path).images[0, 0], [0, 3, 116, 255])


# ------------------------------------------------------------- one resize
def _smooth_image(rng, shape):
    """A smooth uint8 image (a blurred random field), where resampling filters agree."""
    from scipy.ndimage import gaussian_filter

    field = gaussian_filter(rng.random(shape), sigma=(2, 2, 0)[: len(shape)])
    field = (field - field.min()) / (field.max() - field.min())
    return (field * 255).round().astype(np.uint8)


@needs_pil
@pytest.mark.parametrize("size", [(16, 20), (60, 41)])  # shrink and enlarge
@pytest.mark.parametrize("channels", [1, 3])
def test_resize_matches_pillow_bilinear_and_nearest(size, channels):
    """The one resize (torch) is Pillow's BILINEAR within one grey level, and its NEAREST."""
    from skvqad._resize import resize_images

    rng = np.random.default_rng(0)
    image = _smooth_image(rng, (37, 53, channels))
    pil = Image.fromarray(image[..., 0] if channels == 1 else image)
    ours = resize_images(image[None], size)[0]
    bilinear = np.asarray(pil.resize(size[::-1], Image.Resampling.BILINEAR)).reshape(ours.shape)
    assert ours.dtype == np.uint8
    assert np.abs(ours.astype(int) - bilinear).max() <= 1
    labels = rng.integers(0, 4, size=(37, 53, 1)).astype(np.uint8)
    nearest = np.asarray(Image.fromarray(labels[..., 0]).resize(size[::-1], Image.Resampling.NEAREST))
    np.testing.assert_array_equal(resize_images(labels[None], size, nearest=True)[0, ..., 0], nearest)


@needs_pil
def test_loaders_resize_as_image_resizer_does(tmp_path):
    """image_size= in a loader gives the pixels of ImageResizer on the full-size images."""
    from skvqad.preprocessing import ImageResizer

    rng = np.random.default_rng(1)
    for split in ("train", "test"):
        for i in range(3):
            path = tmp_path / split / "good" / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(_smooth_image(rng, (30, 44, 3))).save(path)
    full = load_image_folder(tmp_path, split="train").images
    small = load_image_folder(tmp_path, split="train", image_size=(12, 16)).images
    assert small.shape == (3, 12, 16, 3)
    np.testing.assert_array_equal(small, ImageResizer((12, 16)).fit_transform(full))

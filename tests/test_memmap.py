"""Training and scoring on data larger than memory: a memmap is read batch by batch."""

import tracemalloc

import numpy as np
import pytest
from conftest import make_stripes

from skvqad import VQVAEAnomalyDetector

PIL = pytest.importorskip("PIL.Image")

def test_fitting_and_scoring_a_memmap_hold_no_float_copy(tmp_path):
    # NumPy's allocations are traced by tracemalloc: the float32 copy that fit used to
    # make (4 x 8,000 x 16 x 16 bytes = 8 MB) would show in the peak; batches do not.
    # (benchmarks/bench_memmap.py measures the process's peak RSS on larger data.)
    X = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.uint8,
                                  shape=(8000, 16, 16))
    X[:] = np.random.default_rng(0).integers(0, 256, size=X.shape, dtype=np.uint8)
    X.flush()
    del X
    X = np.load(tmp_path / "X.npy", mmap_mode="r")
    detector = VQVAEAnomalyDetector(
        n_embeddings=8, embedding_dim=4, hidden_channels=4, n_residual_layers=0,
        max_epochs=1, batch_size=256, bank_size=100, random_state=0, device="cpu")
    detector.fit(X[:300])  # what the first fit imports (sympy, ...) is not counted
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        detector.fit(X)
        fit_peak = tracemalloc.get_traced_memory()[1] - start
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        scores = detector.score_samples(X)
        score_peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    float_copy = 4 * X.size
    assert len(scores) == 8000
    assert fit_peak < float_copy / 8, (fit_peak, float_copy)
    assert score_peak < float_copy / 8, (score_peak, float_copy)


def test_a_memmap_scores_as_the_array_in_memory(tmp_path, tiny_params):
    X = (make_stripes(40) * 255).astype(np.uint8)
    np.save(tmp_path / "X.npy", X)
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    a = VQVAEAnomalyDetector(**tiny_params).fit(mapped)
    b = VQVAEAnomalyDetector(**tiny_params).fit(X)
    np.testing.assert_array_equal(a.score_samples(mapped), b.score_samples(X))
    assert not mapped.flags.writeable  # read-only input: nothing writes to it


def test_image_folder_to_npy_streams_a_folder_into_a_memmap(tmp_path):
    from skvqad.datasets import image_folder_to_npy, load_image_folder

    images = (make_stripes(7, size=12) * 255).astype(np.uint8)
    folder = tmp_path / "imgs" / "train" / "a"
    folder.mkdir(parents=True)
    for i, img in enumerate(images):
        PIL.fromarray(img).save(folder / f"{i:02d}.png")
    mapped = image_folder_to_npy(folder, tmp_path / "out.npy", chunk=3)
    assert isinstance(mapped, np.memmap) and mapped.shape == (7, 12, 12)
    np.testing.assert_array_equal(mapped, images)
    np.testing.assert_array_equal(mapped, load_image_folder(tmp_path / "imgs", split="train").images)
    resized = image_folder_to_npy(folder, tmp_path / "small.npy", image_size=6, color_mode="rgb")
    assert resized.shape == (7, 6, 6, 3)
    PIL.fromarray(np.zeros((5, 5), np.uint8)).save(folder / "99.png")
    with pytest.raises(ValueError, match=r"99\.png .*decode to \(5, 5\)"):
        image_folder_to_npy(folder, tmp_path / "bad.npy", chunk=7)

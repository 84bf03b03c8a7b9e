import os

import numpy as np
import pytest
import torch

from skvqad.net import VQVAENet

# pytest-xdist runs one worker per core (addopts in pyproject.toml): each worker's torch
# keeps to one thread, or the workers' thread pools would fight over the cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

#: A detector small enough to train in well under a second on a CPU.
TINY = dict(
    n_embeddings=8,
    embedding_dim=4,
    hidden_channels=8,
    n_residual_layers=1,
    max_epochs=2,
    batch_size=32,
    random_state=0,
    device="cpu",
)


@pytest.fixture
def tiny_params():
    return dict(TINY)


def make_stripes(n, size=16, channels=None, seed=0):
    """Normal images: horizontal stripes with random phase and mild noise."""
    rng = np.random.default_rng(seed)
    rows = np.arange(size)[None, :, None]
    phase = rng.integers(0, 4, size=(n, 1, 1))
    images = 0.25 + 0.5 * (((rows + phase) // 2) % 2)
    images = np.broadcast_to(images, (n, size, size)).astype(np.float32)
    images = images + rng.normal(0, 0.02, size=images.shape).astype(np.float32)
    images = np.clip(images, 0, 1)
    if channels is not None:
        images = np.repeat(images[..., None], channels, axis=-1)
    return images


@pytest.fixture
def stripes():
    return make_stripes(64)


@pytest.fixture
def labelled():
    """Stripes (y = 1) and stripes with a noise patch (y = -1)."""
    X = make_stripes(60, seed=3)
    y = np.ones(60, dtype=int)
    y[::4] = -1
    X[y == -1, 4:12, 4:12] = np.random.default_rng(4).random(((y == -1).sum(), 8, 8))
    return X, y


@pytest.fixture
def trainings(monkeypatch):
    """Record the number of images of every VQVAENet.fit call."""
    sizes = []
    fit = VQVAENet.fit

    def counting_fit(self, X, y=None, **kw):
        sizes.append(len(X))
        return fit(self, X, y, **kw)

    monkeypatch.setattr(VQVAENet, "fit", counting_fit)
    return sizes

import numpy as np
import pytest

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

import numpy as np
import pytest
import torch
from skorch.dataset import Dataset

from skvqad import VQVAEAnomalyDetector
from skvqad.net import ImageBatches


@pytest.mark.parametrize("as_tensor", [False, True])
@pytest.mark.parametrize("shuffle", [False, True])
def test_image_batches_cover_every_image_once(as_tensor, shuffle):
    X = np.arange(10 * 2 * 3 * 3, dtype=np.float32).reshape(10, 2, 3, 3)
    data = torch.from_numpy(X) if as_tensor else X
    batches = list(ImageBatches(Dataset(data), batch_size=4, shuffle=shuffle))
    assert len(ImageBatches(Dataset(data), batch_size=4)) == 3
    assert [len(b) for b, _ in batches] == [4, 4, 2]
    assert all(torch.is_tensor(b) and y is None for b, y in batches)
    got = torch.cat([b for b, _ in batches]).numpy()
    order = np.argsort(got[:, 0, 0, 0])
    np.testing.assert_array_equal(got[order], X)
    if not shuffle:
        np.testing.assert_array_equal(got, X)


def test_shuffle_draws_a_new_order_each_epoch():
    X = np.arange(64, dtype=np.float32).reshape(64, 1, 1, 1)
    it = ImageBatches(Dataset(X), batch_size=64, shuffle=True)
    torch.manual_seed(0)
    first, second = (next(iter(it))[0].flatten() for _ in range(2))
    assert not torch.equal(first, second)


def test_mixed_precision_runs_the_module_in_bf16_but_quantizes_in_fp32(stripes, tiny_params):
    det = VQVAEAnomalyDetector(**tiny_params, mixed_precision=True).fit(stripes)
    assert det.net_.bf16_enabled
    assert np.isfinite(det.score_samples(stripes)).all()
    x = torch.from_numpy(stripes[:4, None])
    with torch.no_grad():
        det.net_.module_.eval()
        out = det.net_.infer(x)
    assert out.logits.dtype == torch.bfloat16
    assert out.z_e.dtype == out.e.dtype == torch.float32
    dist = torch.cdist(out.z_e.float().permute(0, 2, 3, 1).reshape(-1, 4), det.net_.module_.codebook.weight)
    assert torch.equal(out.indices.flatten(), dist.argmin(1))


def test_mixed_precision_auto_is_off_on_cpu(stripes, tiny_params):
    assert not VQVAEAnomalyDetector(**tiny_params).fit(stripes).net_.bf16_enabled

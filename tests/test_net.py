import numpy as np
import pytest
import torch
from skorch.dataset import Dataset

from skvqad import VQVAEAnomalyDetector
from skvqad.model import VQVAE
from skvqad.net import ImageBatches, VQVAENet


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
    # The last layer runs in float32 (it emitted bf16 logits, quantising the reconstruction).
    assert out.logits.dtype == out.z_e.dtype == out.e.dtype == torch.float32
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        hidden = det.net_.module_.decoder[:-1](out.z_e + (out.e - out.z_e))
    assert hidden.dtype == torch.bfloat16
    last = det.net_.module_.decoder[-1]
    with torch.no_grad():
        want = torch.nn.functional.conv_transpose2d(hidden.float(), last.weight, last.bias,
                                                    stride=2, padding=1)
    torch.testing.assert_close(out.logits, want, rtol=1e-5, atol=1e-5)
    assert len(torch.unique(out.logits)) > len(torch.unique(out.logits.bfloat16()))
    dist = torch.cdist(out.z_e.float().permute(0, 2, 3, 1).reshape(-1, 4), det.net_.module_.codebook.weight)
    assert torch.equal(out.indices.flatten(), dist.argmin(1))


@pytest.mark.parametrize("avx512_bf16, amx, expected", [
    (False, False, False), (True, False, True), (False, True, True),
])
def test_mixed_precision_auto_on_cpu_follows_native_bf16(
    monkeypatch, stripes, tiny_params, avx512_bf16, amx, expected
):
    from skvqad.net import cpu_has_native_bf16

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert cpu_has_native_bf16() is expected
    det = VQVAEAnomalyDetector(**tiny_params).fit(stripes)
    assert det.net_.bf16_enabled is expected
    with torch.no_grad():
        det.net_.module_.eval()
        logits = det.net_.infer(torch.from_numpy(stripes[:2, None])).logits
    assert logits.dtype == torch.float32  # the last layer is float32 either way
    # An explicit choice overrides the CPU check either way.
    assert VQVAEAnomalyDetector(**tiny_params, mixed_precision=False).fit(
        stripes).net_.bf16_enabled is False


def test_cpu_without_the_bf16_checks_counts_as_no(monkeypatch):
    from skvqad.net import cpu_has_native_bf16

    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported")
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")
    assert cpu_has_native_bf16() is False


def test_memory_cache_key_holds_the_resolved_precision(monkeypatch, tmp_path, stripes, tiny_params):
    # mixed_precision="auto" trains in bf16 on one CPU and fp32 on another: not the same network.
    det = VQVAEAnomalyDetector(**tiny_params, memory=tmp_path)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    fp32 = det.fit(stripes).score_samples(stripes)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    bf16 = det.fit(stripes).score_samples(stripes)
    assert det.net_.bf16_enabled and not np.allclose(fp32, bf16)


def _restart_net(n_embeddings=16):
    from skvqad.model import VQVAE
    from skvqad.net import CodebookRestart, VQVAENet

    torch.manual_seed(0)
    net = VQVAENet(
        VQVAE, module__hidden_channels=8, module__embedding_dim=4,
        module__n_embeddings=n_embeddings, module__n_residual_layers=1,
    ).initialize()
    net.history.new_epoch()
    restart = CodebookRestart()
    restart.on_train_begin(net)
    return net, restart


def test_codebook_restart_draws_every_code_from_the_first_batch():
    net, restart = _restart_net()
    out = net.infer(torch.rand(8, 1, 8, 8))  # 32 encoder outputs for 16 codes
    restart.on_batch_end(net, training=True, y_pred=out)
    z_e = out.z_e.permute(0, 2, 3, 1).reshape(-1, 4)
    codes = net.module_.codebook.weight.detach()
    # Each code is one of the encoder outputs, and no output is used twice.
    match = (codes[:, None, :] == z_e[None, :, :]).all(-1)
    assert match.any(1).all()
    assert len(set(match.float().argmax(1).tolist())) == 16
    assert net.history[-1, "codes_restarted"] == 16
    # Validation batches change nothing.
    before = codes.clone()
    restart.on_batch_end(net, training=False, y_pred=net.infer(torch.rand(8, 1, 8, 8)))
    assert torch.equal(net.module_.codebook.weight, before)


def test_codebook_restart_redraws_only_the_unused_codes():
    net, restart = _restart_net(n_embeddings=8)
    restart.on_batch_end(net, training=True, y_pred=net.infer(torch.rand(8, 1, 8, 8)))
    out = net.infer(torch.rand(8, 1, 8, 8))
    used = out.indices.unique()
    restart.on_batch_end(net, training=True, y_pred=out)
    before = net.module_.codebook.weight.detach().clone()
    net.history.new_epoch()
    restart.on_epoch_begin(net)
    after = net.module_.codebook.weight.detach()
    unused = torch.tensor([k for k in range(8) if k not in used.tolist()])
    assert net.history[-1, "codes_restarted"] == len(unused) > 0
    torch.testing.assert_close(after[used], before[used], rtol=0, atol=0)
    assert not (after[unused] == before[unused]).all(1).any()
    pool = out.z_e.permute(0, 2, 3, 1).reshape(-1, 4)
    assert all((pool == code).all(1).any() for code in after[unused])
    # The counts start again: the next epoch with no batch restarts nothing.
    net.history.new_epoch()
    restart.on_epoch_begin(net)
    assert net.history[-1, "codes_restarted"] == 0


def test_codebook_restart_draws_from_the_whole_epoch_not_its_last_batch():
    """A last batch of one image (129 images at batch 128) held 4 vectors for 16 dead codes:
    they were drawn with replacement from those 4, and the duplicates died again."""
    net, restart = _restart_net(n_embeddings=16)
    restart.on_batch_end(net, training=True, y_pred=net.infer(torch.rand(8, 1, 8, 8)))  # init
    big = net.infer(torch.rand(8, 1, 8, 8))  # 32 vectors
    with torch.no_grad():
        net.module_.codebook.weight[1:] = 1e3  # only code 0 is ever chosen
    big = big._replace(indices=torch.zeros_like(big.indices))
    restart.on_batch_end(net, training=True, y_pred=big)
    small = net.infer(torch.rand(1, 1, 8, 8))  # the last batch: 4 vectors
    restart.on_batch_end(net, training=True, y_pred=small._replace(indices=torch.zeros_like(small.indices)))
    net.history.new_epoch()
    restart.on_epoch_begin(net)
    assert net.history[-1, "codes_restarted"] == 15
    codes = net.module_.codebook.weight.detach()[1:]
    assert len(torch.unique(codes, dim=0)) == 15  # distinct vectors
    pool = torch.cat([o.z_e.permute(0, 2, 3, 1).reshape(-1, 4) for o in (big, small)])
    assert all((pool == code).all(1).any() for code in codes)
    from_big = sum(bool((big.z_e.permute(0, 2, 3, 1).reshape(-1, 4) == c).all(1).any()) for c in codes)
    assert from_big >= 11  # most come from the earlier batch, not only from the last one
    assert restart.pool_ is None  # a new epoch starts a new reservoir


def test_codebook_restart_keeps_codes_in_use_during_fit(tiny_params):
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, size=(64, 16, 16)).astype(np.float32)
    params = dict(tiny_params, n_embeddings=32, max_epochs=4, batch_size=16)
    plain = VQVAEAnomalyDetector(**params, codebook_restart=False).fit(X)
    restarted = VQVAEAnomalyDetector(**params).fit(X)  # the default
    assert "codes_restarted" not in plain.history_[-1]
    assert restarted.history_[0, "codes_restarted"] == 32
    assert restarted.history_[-1, "codes_used"] > plain.history_[-1, "codes_used"]
    # The parameter stays as given and the user's callbacks are untouched.
    assert restarted.get_params()["callbacks"] is None
    assert np.isfinite(restarted.score_samples(X)).all()
    # The encoder outputs kept for the restarts are not pickled with the net.
    callback = dict(restarted.net_.callbacks_)["codebook_restart"]
    assert callback.pool_ is None and callback.counts_ is None


def test_codebook_usage_counts_the_codes_of_training_batches_only():
    from skvqad.net import CodebookUsage

    net = VQVAENet(VQVAE, module__hidden_channels=8, module__embedding_dim=4,
                   module__n_embeddings=8, module__n_residual_layers=1).initialize()
    usage = CodebookUsage()
    usage.on_epoch_begin(net)
    out = net.infer(torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
    usage.on_batch_end(net, training=False, y_pred=out)  # a validation batch: not counted
    assert usage.counts_ is None
    usage.on_batch_end(net, training=True, y_pred=out)
    usage.on_batch_end(net, training=True, y_pred=out)
    assert int(usage.counts_.sum()) == 2 * 4 * 2 * 2  # two batches of 4 images, 2 x 2 positions
    net.history.new_epoch()
    usage.on_epoch_end(net)
    used = len(torch.unique(out.indices))
    assert net.history[-1, "codes_used"] == used
    assert 1 <= net.history[-1, "codebook_perplexity"] <= used + 1e-9


def test_codebook_restart_forgets_its_pool_after_training():
    """The encoder outputs kept for restarts are dropped: a pickled detector stays small."""
    from skvqad.net import CodebookRestart

    restart = CodebookRestart()
    restart.on_train_begin(net=None)
    assert (restart.initialized_, restart.counts_, restart.pool_) == (False, None, None)
    restart.pool_, restart.counts_ = torch.zeros(128, 256, 8, 8), torch.ones(8)
    restart.on_train_end(net=None)
    assert restart.pool_ is None and restart.counts_ is None


def test_mixed_precision_is_resolved_at_fit_and_kept_for_scoring(monkeypatch, stripes, tiny_params,
                                                                 tmp_path):
    import joblib

    def native(flag):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: flag)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)

    native(False)
    det = VQVAEAnomalyDetector(**tiny_params).fit(stripes)
    scores = det.score_samples(stripes)
    det.save(tmp_path / "fp32.skvqad")
    joblib.dump(det, tmp_path / "fp32.joblib")
    native(True)  # another machine, or the same one asked again: the choice was made at fit
    assert det.mixed_precision_ is False and det.net_.bf16_enabled is False
    np.testing.assert_array_equal(det.score_samples(stripes), scores)
    for loaded in (VQVAEAnomalyDetector.load(tmp_path / "fp32.skvqad"),
                   joblib.load(tmp_path / "fp32.joblib")):
        assert loaded.mixed_precision_ is False and loaded.net_.bf16_enabled is False
        np.testing.assert_array_equal(loaded.score_samples(stripes), scores)
    trained_bf16 = VQVAEAnomalyDetector(**tiny_params).fit(stripes)
    trained_bf16.save(tmp_path / "bf16.skvqad")
    native(False)
    assert VQVAEAnomalyDetector.load(tmp_path / "bf16.skvqad").net_.bf16_enabled is True


def test_memory_cache_key_follows_the_training_code(monkeypatch, tmp_path, stripes, tiny_params,
                                                    trainings):
    import hashlib
    from pathlib import Path

    import skvqad
    from skvqad import detector as detector_module
    from skvqad.net import training_code_digest

    package = Path(skvqad.__file__).parent
    want = hashlib.sha256(b"".join((package / f).read_bytes()
                                   for f in ("model.py", "net.py", "_images.py"))).hexdigest()
    assert training_code_digest() == want[:16]
    VQVAEAnomalyDetector(**tiny_params, memory=tmp_path).fit(stripes)
    VQVAEAnomalyDetector(**tiny_params, memory=tmp_path).fit(stripes)
    assert len(trainings) == 1
    # An edited model, loss or loop (same __version__) is another key: trained again.
    monkeypatch.setattr(detector_module, "training_code_digest", lambda: "edited")
    VQVAEAnomalyDetector(**tiny_params, memory=tmp_path).fit(stripes)
    assert len(trainings) == 2

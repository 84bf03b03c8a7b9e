import numpy as np
import pytest
import torch
from torch.distributions import ContinuousBernoulli

from skvqad.model import VQVAE, VQVAELoss, reconstruction


def tiny_model(**kw):
    params = dict(in_channels=3, hidden_channels=8, embedding_dim=4, n_embeddings=16,
                  n_downsampling=2, n_residual_layers=2)
    params.update(kw)
    return VQVAE(**params)


@pytest.mark.parametrize("n_down, size, latent", [(1, 16, 8), (2, 32, 8), (3, 32, 4)])
def test_output_shapes(n_down, size, latent):
    torch.manual_seed(0)
    model = tiny_model(n_downsampling=n_down)
    out = model(torch.rand(2, 3, size, size))
    assert out.logits.shape == (2, 3, size, size)
    assert out.z_e.shape == out.e.shape == (2, 4, latent, latent)
    assert out.indices.shape == (2, latent, latent)
    assert out.indices.dtype == torch.int64


def test_odd_sizes_are_padded_and_cropped():
    torch.manual_seed(0)
    model = tiny_model()
    out = model(torch.rand(2, 3, 13, 30))
    assert out.logits.shape == (2, 3, 13, 30)
    assert out.z_e.shape[-2:] == (4, 8)  # padded to 16 x 32, divided by 4


def test_architecture_follows_the_paper():
    model = tiny_model(n_downsampling=3, n_residual_layers=3)
    convs = [m for m in model.encoder if isinstance(m, torch.nn.Conv2d)]
    assert [(c.kernel_size, c.stride, c.padding) for c in convs] == (
        [((4, 4), (2, 2), (1, 1))] * 3 + [((1, 1), (1, 1), (0, 0))]
    )
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.encoder) == 3
    assert sum(type(m).__name__ == "ResidualBlock" for m in model.encoder) == 3
    tconvs = [m for m in model.decoder if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(tconvs) == 3 and tconvs[-1].out_channels == 3
    assert model.codebook.weight.shape == (16, 4)


def test_quantization_picks_nearest_codebook_vector():
    torch.manual_seed(0)
    model = tiny_model()
    z_e = torch.randn(2, 4, 3, 3)
    e, idx = model.quantize(z_e)
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, 4)
    brute = torch.cdist(flat, model.codebook.weight).argmin(1)
    assert torch.equal(idx.flatten(), brute)
    assert torch.equal(e.permute(0, 2, 3, 1).reshape(-1, 4), model.codebook.weight[brute])


def test_loss_terms_match_their_definitions():
    torch.manual_seed(0)
    model = tiny_model()
    x = torch.rand(4, 3, 16, 16)
    out = model(x)
    terms = VQVAELoss(beta=0.25)(out, x)
    nll = -ContinuousBernoulli(logits=out.logits).log_prob(x).mean()
    sq = ((out.z_e - out.e) ** 2).mean()
    assert torch.allclose(terms.nll, nll, rtol=1e-5)
    assert torch.allclose(terms.alignment, sq) and torch.allclose(terms.commitment, sq)
    assert torch.allclose(terms.loss, nll + sq + 0.25 * sq, rtol=1e-5)


def test_gradients_reach_codebook_encoder_and_decoder():
    torch.manual_seed(0)
    model = tiny_model()
    x = torch.rand(4, 3, 16, 16)
    loss = VQVAELoss()(model(x), x).loss
    loss.backward()
    used = model(x).indices.unique()
    grad = model.codebook.weight.grad
    assert grad[used].abs().sum() > 0  # the alignment term moves the used codes
    unused = torch.ones(len(grad), dtype=bool)
    unused[used] = False
    assert grad[unused].abs().sum() == 0
    # straight-through: the reconstruction term reaches the encoder
    assert model.encoder[0].weight.grad.abs().sum() > 0
    assert model.decoder[0].weight.grad.abs().sum() > 0


def test_codebook_changes_after_an_optimizer_step():
    torch.manual_seed(0)
    model = tiny_model()
    before = model.codebook.weight.detach().clone()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.rand(4, 3, 16, 16)
    VQVAELoss()(model(x), x).loss.backward()
    opt.step()
    assert not torch.equal(before, model.codebook.weight.detach())


def test_reconstruction_is_the_continuous_bernoulli_mean():
    logits = torch.tensor([-5.0, -1.0, 0.0, 1e-4, 2.0, 5.0])
    lam = torch.sigmoid(logits.double())
    # Closed form of the mean away from lambda = 1/2 (Loaiza-Ganem & Cunningham, 2019).
    expected = lam / (2 * lam - 1) + 1 / (2 * torch.atanh(1 - 2 * lam))
    expected[2:4] = 0.5
    got = reconstruction(logits)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-4)
    assert ((got > 0) & (got < 1)).all()


def test_n_downsampling_must_be_positive():
    with pytest.raises(ValueError, match="n_downsampling"):
        tiny_model(n_downsampling=0)


def test_sum_reduction_is_eq_4_summed_over_each_image():
    torch.manual_seed(0)
    model = VQVAE(in_channels=2, hidden_channels=8, embedding_dim=4, n_embeddings=8,
                  n_residual_layers=1)
    x = torch.rand(3, 2, 8, 8)
    out = model(x)
    mean, total = VQVAELoss()(out, x), VQVAELoss(reduction="sum")(out, x)
    per_image_nll = -ContinuousBernoulli(logits=out.logits).log_prob(x)
    torch.testing.assert_close(total.nll, per_image_nll.sum((1, 2, 3)).mean())
    torch.testing.assert_close(total.alignment, (out.e - out.z_e).pow(2).sum((1, 2, 3)).mean())
    torch.testing.assert_close(total.nll, mean.nll * 128)
    torch.testing.assert_close(total.loss, total.nll + total.alignment + 0.25 * total.commitment)
    with pytest.raises(ValueError, match="reduction"):
        VQVAELoss(reduction="none")

"""The VQ-VAE of Section III-A of the paper and its loss (eq. 4).

Everything that defines the network lives here: the encoder, the codebook
with nearest-neighbour quantisation (eq. 2) and a straight-through gradient,
the decoder with a continuous-Bernoulli output, and :class:`VQVAELoss`.
Training is done by :class:`skvqad.net.VQVAENet` (skorch); turning the
outputs into anomaly maps by :mod:`skvqad.maps`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.distributions import ContinuousBernoulli
from torch.nn import functional as F

__all__ = ["VQVAE", "VQVAELoss", "VQVAEOutput", "VQVAELossTerms", "reconstruction"]


class VQVAEOutput(NamedTuple):
    """What :meth:`VQVAE.forward` returns.

    Attributes
    ----------
    logits : torch.Tensor of shape (n, C, H, W)
        Logits of the continuous-Bernoulli likelihood of each pixel.
    z_e : torch.Tensor of shape (n, D, h, w)
        Encoder output.
    e : torch.Tensor of shape (n, D, h, w)
        The codebook vector selected for each latent position (no
        straight-through trick applied: gradients reach the codebook).
    indices : torch.Tensor of shape (n, h, w)
        Index of the selected codebook vector.

    Examples
    --------
    >>> import torch
    >>> from skvqad.model import VQVAE
    >>> model = VQVAE(hidden_channels=8, embedding_dim=4, n_embeddings=8, n_residual_layers=1)
    >>> out = model(torch.rand(2, 1, 8, 8))
    >>> out._fields
    ('logits', 'z_e', 'e', 'indices')
    >>> out.e.shape == out.z_e.shape, out.indices.dtype
    (True, torch.int64)
    """

    logits: torch.Tensor
    z_e: torch.Tensor
    e: torch.Tensor
    indices: torch.Tensor


class VQVAELossTerms(NamedTuple):
    """The terms of eq. 4, each averaged over its elements.

    What :class:`VQVAELoss` returns.

    Attributes
    ----------
    loss : torch.Tensor of shape ()
        ``nll + alignment + beta * commitment``.
    nll : torch.Tensor of shape ()
        Continuous-Bernoulli negative log-likelihood of the pixels.
    alignment : torch.Tensor of shape ()
        ``||sg[z_e] - e||^2``.
    commitment : torch.Tensor of shape ()
        ``||z_e - sg[e]||^2``.

    Examples
    --------
    >>> import torch
    >>> from skvqad.model import VQVAE, VQVAELoss
    >>> model = VQVAE(hidden_channels=8, embedding_dim=4, n_embeddings=8, n_residual_layers=1)
    >>> x = torch.rand(2, 1, 8, 8)
    >>> terms = VQVAELoss()(model(x), x)
    >>> terms._fields
    ('loss', 'nll', 'alignment', 'commitment')
    >>> terms.loss.shape
    torch.Size([])
    """

    loss: torch.Tensor
    nll: torch.Tensor
    alignment: torch.Tensor
    commitment: torch.Tensor


class ResidualBlock(nn.Module):
    """ReLU, 3x3 convolution, ReLU, 1x1 convolution, plus the identity."""

    def __init__(self, channels: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, channels, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class BatchNorm2d(nn.BatchNorm2d):
    """:class:`torch.nn.BatchNorm2d` that also trains on one value per channel.

    A training batch whose normalised tensor holds a single value per
    channel (one image on a 1x1 grid: the last, short batch of a data set
    with a tight bottleneck) has no batch variance, and torch refuses it. Such
    a batch is normalised with the running statistics instead and leaves
    them unchanged; every other batch is normalised as by the parent class.
    Parameters and buffers are the parent's, so state dicts are compatible.

    Examples
    --------
    >>> import torch
    >>> from skvqad.model import BatchNorm2d
    >>> bn = BatchNorm2d(3).train()
    >>> bn(torch.ones(1, 3, 1, 1)).shape  # torch.nn.BatchNorm2d raises here
    torch.Size([1, 3, 1, 1])
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.numel() == x.shape[1]:
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias,
                training=False, eps=self.eps,
            )
        return super().forward(x)


class VQVAE(nn.Module):
    """Vector-Quantized VAE with a continuous-Bernoulli decoder.

    Parameters
    ----------
    in_channels : int, default=1
        Number of image channels.
    hidden_channels : int, default=256
        Width of every convolution of the encoder and the decoder.
    embedding_dim : int, default=256
        Dimension D of the codebook vectors.
    n_embeddings : int, default=512
        Number M of codebook vectors.
    n_downsampling : int, default=2
        Number of stride-2 convolutions (at least 1); the latent grid is the
        image size divided by ``2 ** n_downsampling``.
    n_residual_layers : int, default=3
        Residual blocks after the strided convolutions (and before the
        transposed convolutions in the decoder).

    Notes
    -----
    The encoder is ``n_downsampling`` times (conv 4x4 stride 2, ReLU,
    BatchNorm), ``n_residual_layers`` residual blocks and a 1x1 projection
    to ``embedding_dim``. The decoder mirrors it: a 1x1 projection back to
    ``hidden_channels``, the residual blocks, then transposed convolutions
    (each but the last followed by ReLU and BatchNorm), the last one giving
    one logit per pixel and channel. The codebook is initialised uniformly
    in ``[-1/M, 1/M]`` as in van den Oord et al. (2017).

    Examples
    --------
    >>> import torch
    >>> from skvqad.model import VQVAE
    >>> model = VQVAE(hidden_channels=8, embedding_dim=4, n_embeddings=8, n_residual_layers=1)
    >>> out = model(torch.rand(2, 1, 8, 8))
    >>> out.logits.shape, out.z_e.shape, out.indices.shape
    (torch.Size([2, 1, 8, 8]), torch.Size([2, 4, 2, 2]), torch.Size([2, 2, 2]))
    """

    def __init__(
        self,
        in_channels: int = 1,
        hidden_channels: int = 256,
        embedding_dim: int = 256,
        n_embeddings: int = 512,
        n_downsampling: int = 2,
        n_residual_layers: int = 3,
    ):
        super().__init__()
        if n_downsampling < 1:
            raise ValueError(f"n_downsampling must be at least 1, got {n_downsampling}.")
        self.in_channels = in_channels
        self.n_downsampling = n_downsampling

        encoder: list[nn.Module] = []
        channels = in_channels
        for _ in range(n_downsampling):
            encoder += [
                nn.Conv2d(channels, hidden_channels, kernel_size=4, stride=2, padding=1),
                nn.ReLU(),
                BatchNorm2d(hidden_channels),
            ]
            channels = hidden_channels
        encoder += [ResidualBlock(channels) for _ in range(n_residual_layers)]
        encoder += [nn.Conv2d(channels, embedding_dim, kernel_size=1)]
        self.encoder = nn.Sequential(*encoder)

        self.codebook = nn.Embedding(n_embeddings, embedding_dim)
        nn.init.uniform_(self.codebook.weight, -1.0 / n_embeddings, 1.0 / n_embeddings)

        decoder: list[nn.Module] = [nn.Conv2d(embedding_dim, hidden_channels, kernel_size=1)]
        decoder += [ResidualBlock(hidden_channels) for _ in range(n_residual_layers)]
        for i in range(n_downsampling):
            last = i == n_downsampling - 1
            out = in_channels if last else hidden_channels
            decoder.append(
                nn.ConvTranspose2d(hidden_channels, out, kernel_size=4, stride=2, padding=1)
            )
            if not last:
                decoder += [nn.ReLU(), BatchNorm2d(hidden_channels)]
        self.decoder = nn.Sequential(*decoder)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw every parameter again, as construction does, from ``generator``.

        torch's default initialisation of each layer (Kaiming-uniform weights
        and uniform biases of the convolutions, unit and zero BatchNorm
        parameters and statistics), then the codebook's ``[-1/M, 1/M]``,
        in the order construction draws them: with a generator seeded like
        the global one, the weights are the same bit for bit. A module
        built on the ``"meta"`` device and materialised with ``to_empty``
        is thus initialised without touching torch's global random state
        (which other threads may be using).

        Parameters
        ----------
        generator : torch.Generator or None, default=None
            On the parameters' device; None draws from torch's global one.

        Examples
        --------
        >>> import torch
        >>> from skvqad.model import VQVAE
        >>> kwargs = dict(hidden_channels=8, embedding_dim=4, n_embeddings=8, n_residual_layers=1)
        >>> _ = torch.manual_seed(3)
        >>> built = VQVAE(**kwargs)
        >>> with torch.device("meta"):
        ...     drawn = VQVAE(**kwargs)
        >>> drawn = drawn.to_empty(device="cpu")
        >>> drawn.reset_parameters(torch.Generator().manual_seed(3))
        >>> all(torch.equal(a, b) for a, b in zip(built.state_dict().values(),
        ...                                        drawn.state_dict().values()))
        True
        """
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                # torch's _ConvNd.reset_parameters: kaiming_uniform_(weight, a=sqrt(5)), then
                # the bias uniform in +-1/sqrt(fan_in).
                fan_in, _ = nn.init._calculate_fan_in_and_fan_out(module.weight)
                gain = nn.init.calculate_gain("leaky_relu", math.sqrt(5))
                bound = math.sqrt(3.0) * gain / math.sqrt(fan_in)
                module.weight.uniform_(-bound, bound, generator=generator)
                if module.bias is not None:
                    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
                    module.bias.uniform_(-bound, bound, generator=generator)
            elif isinstance(module, nn.BatchNorm2d):
                module.reset_parameters()
            elif isinstance(module, nn.Embedding):
                module.weight.normal_(generator=generator)  # nn.Embedding's own, then ours
                m = module.num_embeddings
                module.weight.uniform_(-1.0 / m, 1.0 / m, generator=generator)

    def quantize(self, z_e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest codebook vector of each latent position (eq. 2).

        Parameters
        ----------
        z_e : torch.Tensor of shape (n, D, h, w)
            Encoder output.

        Returns
        -------
        e : torch.Tensor of shape (n, D, h, w)
            The selected codebook vectors, shaped like ``z_e``.
        indices : torch.Tensor of shape (n, h, w)
            Their indices in the codebook.

        Examples
        --------
        A codebook vector is its own nearest neighbour:

        >>> import torch
        >>> from skvqad.model import VQVAE
        >>> model = VQVAE(hidden_channels=8, embedding_dim=4, n_embeddings=8, n_residual_layers=1)
        >>> codes = model.codebook.weight.detach()
        >>> z_e = codes[[3, 5, 0, 7]].T.reshape(1, 4, 2, 2)
        >>> e, indices = model.quantize(z_e)
        >>> indices
        tensor([[[3, 5],
                 [0, 7]]])
        >>> torch.equal(e, z_e)
        True
        """
        n, d, h, w = z_e.shape
        # In float32 even under autocast: bf16 distances pick wrong codes.
        with torch.autocast(device_type=z_e.device.type, enabled=False):
            flat = z_e.float().permute(0, 2, 3, 1).reshape(-1, d)
            weight = self.codebook.weight.float()
            # ||z||^2 is the same for every code, so it does not change the argmin.
            dist = (weight * weight).sum(1) - 2.0 * flat @ weight.t()
            indices = dist.argmin(1)
        e = self.codebook(indices).view(n, h, w, d).permute(0, 3, 1, 2)
        return e, indices.view(n, h, w)

    def forward(self, x: torch.Tensor) -> VQVAEOutput:
        """Encode, quantise and decode a batch of images (n, C, H, W) in [0, 1].

        Images whose sides are not multiples of ``2 ** n_downsampling`` are
        padded at the bottom and right by replicating their edge pixels; the
        logits are cropped back to ``(H, W)``, while ``z_e``, ``e`` and
        ``indices`` cover the padded image.

        Parameters
        ----------
        x : torch.Tensor of shape (n, C, H, W)
            Images in [0, 1].

        Returns
        -------
        VQVAEOutput
            ``logits``, ``z_e``, ``e`` and ``indices``.

        Examples
        --------
        A 10 x 12 image is padded to 12 x 12, a 3 x 3 latent grid:

        >>> import torch
        >>> from skvqad.model import VQVAE
        >>> model = VQVAE(hidden_channels=8, embedding_dim=4, n_embeddings=8, n_residual_layers=1)
        >>> out = model(torch.rand(2, 1, 10, 12))
        >>> out.logits.shape, out.indices.shape
        (torch.Size([2, 1, 10, 12]), torch.Size([2, 3, 3]))
        """
        height, width = x.shape[-2:]
        z_e, e, indices = self.encode(x)
        # Straight-through estimator: the decoder sees e, the encoder gets
        # the decoder's gradient as if z_e had been passed on unchanged.
        z_q = z_e + (e - z_e).detach()
        hidden = self.decoder[:-1](z_q)
        # The last transposed convolution in float32 even under autocast, as the encoder's
        # last projection: bf16 logits would quantise the reconstruction SSIM compares
        # (steps of about 0.03 near a logit of 4).
        with torch.autocast(device_type=x.device.type, enabled=False):
            logits = self.decoder[-1](hidden.float())[..., :height, :width]
        return VQVAEOutput(logits=logits, z_e=z_e, e=e, indices=indices)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encoder output, its codebook vectors and their indices (no decoder).

        The first half of :meth:`forward`, with the same padding: what a pass
        that needs only the latent grid (the code counts of the detector's
        prior) computes.

        Parameters
        ----------
        x : torch.Tensor of shape (n, C, H, W)
            Images in [0, 1].

        Returns
        -------
        z_e, e : torch.Tensor of shape (n, D, h, w)
        indices : torch.Tensor of shape (n, h, w)

        Examples
        --------
        >>> import torch
        >>> from skvqad.model import VQVAE
        >>> model = VQVAE(hidden_channels=8, embedding_dim=4, n_embeddings=8, n_residual_layers=1)
        >>> x = torch.rand(2, 1, 8, 8)
        >>> torch.equal(model.encode(x)[2], model(x).indices)
        True
        """
        height, width = x.shape[-2:]
        factor = 2**self.n_downsampling
        pad_h, pad_w = -height % factor, -width % factor
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        hidden = self.encoder[:-1](x)
        # The last 1x1 projection in float32 even under autocast: z_e feeds the
        # codebook search and the alignment map, which bf16 rounding would blur.
        with torch.autocast(device_type=x.device.type, enabled=False):
            z_e = self.encoder[-1](hidden.float())
        e, indices = self.quantize(z_e)
        return z_e, e, indices


def reconstruction(logits: torch.Tensor) -> torch.Tensor:
    """Mean of the continuous-Bernoulli distribution given by ``logits``.

    Parameters
    ----------
    logits : torch.Tensor
        Logits of the decoder, e.g. ``VQVAEOutput.logits``.

    Returns
    -------
    torch.Tensor
        The reconstruction, of the shape of ``logits``, in [0, 1] (float32).

    Examples
    --------
    >>> import torch
    >>> from skvqad.model import reconstruction
    >>> reconstruction(torch.tensor([-5.0, 0.0, 5.0])).round(decimals=4)
    tensor([0.1932, 0.5000, 0.8068])
    """
    return ContinuousBernoulli(logits=logits.float(), validate_args=False).mean


class VQVAELoss(nn.Module):
    """The VQ-VAE loss of eq. 4 with a continuous-Bernoulli likelihood.

    ``loss = nll + alignment + beta * commitment`` where ``nll`` is the
    continuous-Bernoulli negative log-likelihood of the pixels, ``alignment``
    is ``||sg[z_e] - e||^2`` (moves the codebook) and ``commitment`` is
    ``||z_e - sg[e]||^2`` (keeps the encoder close to its codes).

    Eq. 4 sums each term over the elements of one image (pixels for the
    likelihood, latent values for the other two); ``reduction="sum"`` does
    that (and averages over the images of the batch). The default, ``"mean"``,
    averages each term over its elements instead, so that the loss does not
    grow with the image size; this weighs the terms differently: relative to
    the likelihood, the alignment and commitment terms count
    ``(H W C) / (h w D)`` times as much as in eq. 4 (0.19 for 32 px colour
    images on an 8 x 8 x 256 grid).

    Parameters
    ----------
    beta : float, default=0.25
        Weight of the commitment term.
    reduction : {"mean", "sum"}, default="mean"
        Average each term over its elements, or sum it over each image's
        elements as eq. 4 writes it.

    Examples
    --------
    >>> import torch
    >>> from skvqad.model import VQVAE, VQVAELoss
    >>> model = VQVAE(hidden_channels=8, embedding_dim=4, n_embeddings=8, n_residual_layers=1)
    >>> x = torch.rand(2, 1, 8, 8)
    >>> terms = VQVAELoss(beta=0.25)(model(x), x)
    >>> bool(torch.isclose(terms.loss, terms.nll + terms.alignment + 0.25 * terms.commitment))
    True
    """

    def __init__(self, beta: float = 0.25, reduction: str = "mean"):
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}.")
        self.beta = beta
        self.reduction = reduction

    def forward(self, output: VQVAEOutput, x: torch.Tensor) -> VQVAELossTerms:
        """The loss of eq. 4 and its terms.

        Parameters
        ----------
        output : VQVAEOutput
            What :meth:`VQVAE.forward` returned for ``x``.
        x : torch.Tensor of shape (n, C, H, W)
            The images, in [0, 1].

        Returns
        -------
        VQVAELossTerms
            ``loss`` (to minimise), ``nll``, ``alignment`` and ``commitment``.

        Examples
        --------
        >>> import torch
        >>> from skvqad.model import VQVAE, VQVAELoss
        >>> model = VQVAE(hidden_channels=8, embedding_dim=4, n_embeddings=8, n_residual_layers=1)
        >>> x = torch.rand(2, 1, 8, 8)
        >>> terms = VQVAELoss().forward(model(x), x)
        >>> bool(torch.isclose(terms.alignment, terms.commitment))  # same value, other gradients
        True
        >>> terms.loss.backward()
        >>> model.codebook.weight.grad.shape
        torch.Size([8, 4])
        """
        likelihood = ContinuousBernoulli(logits=output.logits.float(), validate_args=False)
        nll = -likelihood.log_prob(x.float()).mean()
        alignment = F.mse_loss(output.e, output.z_e.detach())
        commitment = F.mse_loss(output.z_e, output.e.detach())
        if self.reduction == "sum":  # eq. 4: each term summed over one image's elements
            nll = nll * x[0].numel()
            alignment = alignment * output.z_e[0].numel()
            commitment = commitment * output.z_e[0].numel()
        loss = nll + alignment + self.beta * commitment
        return VQVAELossTerms(loss=loss, nll=nll, alignment=alignment, commitment=commitment)

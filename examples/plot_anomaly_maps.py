"""What the three anomaly maps show
================================

A VQ-VAE is trained on images of one texture (stripes with random phase and
noise) and shown new images with three kinds of defect: a bright blob, a
dark scratch and a patch of noise. For each, the figure shows the image, the
network's reconstruction and the three maps of the paper: the SSIM map (SM,
``1 - SSIM`` between image and reconstruction), the alignment map (AM, the
distance of each encoder output to its codebook vector, upsampled and
grey-dilated) and their product, SSIM+AM, which keeps the AM's markers in
the shape that the SSIM map gives them.

A small network on 32 px images, trained for a few seconds on the CPU; this
page is built by running it.
"""

import matplotlib.pyplot as plt
import numpy as np

from skvqad import VQVAEAnomalyDetector

rng = np.random.default_rng(0)


def stripes(n, size=32):
    """Normal images: horizontal stripes of period 8 with a random phase, and noise."""
    rows = np.arange(size)[None, :, None]
    phase = rng.integers(0, 8, size=(n, 1, 1))
    images = 0.3 + 0.4 * (((rows + phase) // 4) % 2)
    images = np.broadcast_to(images, (n, size, size)) + rng.normal(0, 0.03, (n, size, size))
    return np.clip(images, 0, 1).astype(np.float32)


X_train = stripes(192)
detector = VQVAEAnomalyDetector(
    hidden_channels=32, embedding_dim=16, n_embeddings=32, n_residual_layers=1,
    max_epochs=20, batch_size=32, lr=3e-3, dilation_radius=2, random_state=0, device="cpu",
).fit(X_train)

# %%
# Three defects on new normal images
# ----------------------------------

defective = stripes(3)
defective[0, 10:16, 18:24] = 1.0  # a bright blob
defective[1, 4:28, 14:16] = 0.0  # a dark vertical scratch
defective[2, 18:28, 6:16] = rng.uniform(0, 1, (10, 10))  # a patch of noise
names = ["bright blob", "dark scratch", "noise patch"]

# %%
# The three maps of one network, from one pass
# --------------------------------------------
# ``score_map`` changes no weights, so the maps come from the same network;
# ``score_samples_multi`` scores all three settings from one pass.

maps = {m: detector.set_params(score_map=m).anomaly_map(defective) for m in ("ssim", "am", "ssim+am")}
reconstructions = detector.reconstruct(defective)

fig, axes = plt.subplots(3, 5, figsize=(10, 6.4))
for row, name in enumerate(names):
    panels = [("image: " + name, defective[row], "gray"),
              ("reconstruction", reconstructions[row], "gray"),
              ("SM (1 - SSIM)", maps["ssim"][row], "inferno"),
              ("AM", maps["am"][row], "inferno"),
              ("SSIM+AM", maps["ssim+am"][row], "inferno")]
    for ax, (title, image, cmap) in zip(axes[row], panels, strict=True):
        ax.imshow(image, cmap=cmap, vmin=0 if cmap == "gray" else None,
                  vmax=1 if cmap == "gray" else None)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
fig.tight_layout()

# %%
# Image scores
# ------------
# An image's score is minus the mean of its map (higher = more normal); the
# defective images score below new normal ones under each map.

normal = stripes(50)
scores = detector.score_samples_multi(
    np.concatenate([normal, defective]),
    {m: {"score_map": m} for m in ("ssim", "am", "ssim+am")},
)
for m, s in scores.items():
    print(f"{m:8s} lowest normal score {s[:50].min():.4f}; defective scores "
          + ", ".join(f"{v:.4f}" for v in s[50:]))

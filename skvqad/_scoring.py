"""From a fitted detector's network to image scores, one network pass per batch.

:class:`Scorer` holds what scoring needs of a fitted
:class:`~skvqad.VQVAEAnomalyDetector` (its net, the ratio of the image to the
latent grid, the bank, the code counts, the calibration of fused maps) and
runs each batch of images through the net once: the net's outputs become the
maps of every setting (:func:`skvqad.maps.anomaly_maps`, which shares what
settings have in common), each map is pooled into one value per image
(:func:`pool`), and a fused setting's values are standardised with the
training images' calibration and the largest is kept (:meth:`Scorer.fuse`).
The detector's scoring methods validate their input, build a ``Scorer`` and
read its batches. :func:`latent_statistics` is the encoder pass of ``fit``
that counts the codes and draws the bank.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions, validate_parameter_constraints

from .maps import (
    ALIGNMENTS,
    CHANNEL_REDUCTIONS,
    MAP_PARAMS,
    SCORES,
    check_map_setting,
    leave_one_out_prior_map,
)
from .maps import anomaly_maps as _anomaly_maps
from .model import reconstruction
from .thresholds import offset_from_scores

#: The scoring parameters (documented as :data:`skvqad.detector.SCORING_PARAMS`).
SCORING_PARAMS = (*MAP_PARAMS, "score_pooling")

#: scikit-learn's constraints of the scoring parameters (with ``batch_size``), for the
#: detector's ``_parameter_constraints`` and for :func:`check_scoring_params`.
SCORING_CONSTRAINTS: dict = {
    "score_map": [StrOptions(set(SCORES)), tuple, list],
    "alignment": [StrOptions(set(ALIGNMENTS))],
    "ssim_window": [Interval(Integral, 1, None, closed="left")],
    "ssim_sigma": [Interval(Real, 0, None, closed="neither")],
    "ssim_constants": [tuple, list, None],
    "channel_reduction": [StrOptions(set(CHANNEL_REDUCTIONS))],
    "dilation_radius": [Interval(Integral, 0, None, closed="left")],
    "ssim_dilation_radius": [Interval(Integral, 0, None, closed="left")],
    "prior_smoothing": [Interval(Real, 0, None, closed="neither")],
    "prior_radius": [Interval(Integral, 0, None, closed="left")],
    "score_pooling": [StrOptions({"mean", "max"}), Interval(Real, 0, 1, closed="neither")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
}


def check_scoring_params(params: dict, overrides: dict | None = None,
                         caller: str = "VQVAEAnomalyDetector") -> dict:
    """The scoring parameters ``params`` (and ``batch_size``), with ``overrides``, validated.

    Raises ``ValueError`` naming the parameter (an override that is not a
    scoring parameter, a value ``fit`` would refuse); a fused ``score_map``
    comes back as a tuple.
    """
    params = dict(params)
    if overrides:
        unknown = sorted(set(overrides) - set(SCORING_PARAMS))
        if unknown:
            raise ValueError(
                f"{unknown} cannot be changed at scoring time: a setting may hold "
                f"{sorted(SCORING_PARAMS)} (the other parameters change the network: "
                "set them and fit again)."
            )
        params.update(overrides)
    constraints = {name: SCORING_CONSTRAINTS[name] for name in params}
    validate_parameter_constraints(constraints, params, caller_name=caller)
    score_map = params["score_map"]
    if not isinstance(score_map, str):
        names = tuple(score_map)
        if (len(names) < 2 or len(set(names)) != len(names)
                or not all(isinstance(n, str) and n in SCORES for n in names)):
            raise ValueError(
                f"score_map must be one of {SCORES}, or a tuple of two or more distinct "
                f"of them to fuse, got {score_map!r}."
            )
        params["score_map"] = names
    # The checks of the maps' own parameters live with the maps (one copy).
    check_map_setting({k: params[k] for k in MAP_PARAMS if k != "score_map"})
    return params


def pool(maps: torch.Tensor, pooling) -> torch.Tensor:
    """Each (H, W) map of ``maps`` reduced to one float64 value by ``pooling``."""
    flat = maps.flatten(1).double()
    if pooling == "mean":
        return flat.mean(dim=1)
    if pooling == "max":
        return flat.amax(dim=1)
    if flat.numel() <= 2**24:  # torch.quantile's input limit
        return torch.quantile(flat, pooling, dim=1)
    return torch.stack([torch.quantile(row, pooling) for row in flat])


def components(setting: dict) -> tuple:
    """The maps a validated setting's ``score_map`` names: one, or those it fuses."""
    score_map = setting["score_map"]
    return (score_map,) if isinstance(score_map, str) else tuple(score_map)


def calibration_key(setting: dict) -> dict:
    """The scoring parameters that a calibration depends on (all but the map)."""
    return {k: setting[k] for k in SCORING_PARAMS if k != "score_map"}


def expand(settings: list[dict]):
    """The distinct one-map settings that ``settings`` need, and which each uses."""
    bases, index, plan = [], {}, []
    for setting in settings:
        used = []
        for name in components(setting):
            base = dict(setting, score_map=name)
            key = repr(sorted(base.items()))
            if key not in index:
                index[key] = len(bases)
                bases.append(base)
            used.append(index[key])
        plan.append(used)
    return bases, plan


def latent_statistics(net, batches, n_images: int, bank_size: int, seed: int):
    """The code counts and the bank of the training images, from one encoder pass.

    Each batch's codes (the encoder alone, no decoder) are counted per
    latent position; when ``bank_size > 0``, the bank keeps the encoder
    outputs at ``bank_size`` positions drawn first (uniformly without
    replacement among all latent positions of all ``n_images`` images).
    Returns ``(counts, bank)`` as NumPy arrays on the host (so that a pickle
    of a CUDA-fitted detector loads without CUDA); ``bank`` is None when
    ``bank_size`` is 0.
    """
    rng = np.random.default_rng(seed)
    counts, keep, parts, start = None, None, [], 0
    m = net.module_.codebook.num_embeddings
    for x in batches:
        z_e, _, indices = net.encode(x)
        n, h, w = indices.shape
        positions = torch.arange(h * w, device=indices.device).repeat(n)
        batch = torch.bincount(positions * m + indices.flatten(), minlength=h * w * m)
        counts = batch if counts is None else counts + batch
        if not bank_size:
            continue
        flat = z_e.float().permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])
        if keep is None:
            total = h * w * n_images
            keep = np.sort(rng.choice(total, size=min(bank_size, total), replace=False))
        chosen = keep[(keep >= start) & (keep < start + len(flat))] - start
        parts.append(flat[torch.from_numpy(chosen).to(flat.device)])
        start += len(flat)
    counts = counts.view(h, w, m).cpu().numpy()
    return counts, (torch.cat(parts).cpu().numpy() if parts else None)


@dataclass
class Scorer:
    """What scoring needs of a fitted detector, and the pass from batches to scores.

    Parameters
    ----------
    net : skvqad.net.VQVAENet
        The trained net.
    factor : int
        Ratio of the (padded) image size to the latent grid.
    bank : ndarray of shape (k, D) or None, default=None
        ``bank_``, for ``alignment="bank"``.
    code_counts : ndarray of shape (h, w, M) or None, default=None
        ``code_counts_``, for the prior maps.
    calibration : dict or None, default=None
        ``score_calibration_``, for fused settings.
    calibration_params : dict or None, default=None
        ``calibration_params_``: the scoring parameters it was measured under.
    """

    net: object
    factor: int
    bank: np.ndarray | None = None
    code_counts: np.ndarray | None = None
    calibration: dict | None = None
    calibration_params: dict | None = None

    def outputs(self, batches):
        """Yield ``(x, output)`` for each batch ``x`` (float32 on the net's device)."""
        with torch.inference_mode():
            for x in batches:
                yield x, self.net.evaluation_step((x, None))

    def iter_maps(self, batches, settings: list[dict], training: bool = False):
        """Yield, for each batch, the maps of each one-map setting.

        ``settings`` are validated scoring parameters whose ``score_map`` is
        one map, not a fusion. Each batch goes through the net once and its
        outputs go to :func:`~skvqad.maps.anomaly_maps` on the net's device;
        the (batch, H, W) maps stay on the device. With ``training``, the
        batches are the images counted in ``code_counts`` and the prior maps
        leave each one's own codes out.
        """
        device = self.net.device
        map_settings = [{k: p[k] for k in MAP_PARAMS} for p in settings]
        bank = None if self.bank is None else torch.as_tensor(self.bank).to(device)
        if bank is None and any(
            s["alignment"] == "bank" and "am" in s["score_map"].split("+") for s in map_settings
        ):
            raise ValueError(
                "alignment='bank' needs the bank of training encoder outputs, which fit "
                "builds when bank_size > 0; this detector was fitted with bank_size=0: "
                "refit it with bank_size > 0."
            )
        counts = None
        if any(s["score_map"] == "prior" for s in map_settings):
            if self.code_counts is None:
                raise ValueError(
                    "The prior maps need code_counts_, which fit counts since skvqad "
                    "added the code prior; this detector was fitted before: refit it."
                )
            counts = torch.from_numpy(np.asarray(self.code_counts)).to(device)
        tables = {}
        for x, out in self.outputs(batches):
            prior = None
            if training and counts is not None:
                def prior(smoothing, radius, indices=out.indices):
                    return leave_one_out_prior_map(indices, counts, smoothing=smoothing,
                                                   radius=radius)
            yield _anomaly_maps(x, lambda out=out: reconstruction(out.logits), None,
                                map_settings, factor=self.factor, z_e=out.z_e, e=out.e,
                                bank=bank, prior=prior, indices=out.indices,
                                code_counts=counts, prior_tables=tables)

    def standardise(self, setting: dict):
        """``(means, scales)`` of the maps a fused setting standardises, checked."""
        if self.calibration_params is None:
            raise ValueError(
                "A fused score_map needs score_calibration_, which fit measures since "
                "skvqad added fused maps; this detector was fitted before: refit it, or "
                "call refit_threshold(X) with normal images."
            )
        wanted, calibrated = calibration_key(setting), self.calibration_params
        differ = sorted(k for k in wanted if wanted[k] != calibrated[k])
        if differ:
            raise ValueError(
                f"score_map={setting['score_map']!r} standardises each map with the training "
                f"scores that fit measured under the scoring parameters of that time; these "
                f"differ in {differ} ({ {k: (calibrated[k], wanted[k]) for k in differ} }, "
                "calibrated, asked): call refit_threshold(X) with normal images to measure "
                "them again under the new parameters."
            )
        names = components(setting)
        missing = [n for n in names if n not in self.calibration]
        if missing:
            raise ValueError(f"No calibration of {missing} was measured (alignment='bank' "
                             "without a bank).")
        means = np.array([self.calibration[n][0] for n in names])
        scales = np.array([self.calibration[n][1] for n in names])
        return means, np.where(scales > 0, scales, 1.0)

    def fuse(self, setting: dict, anomaly) -> np.ndarray:
        """The anomaly values (higher = more anomalous) of a setting from its maps' pooled values.

        ``anomaly`` is a dict from map name to its pooled values, or a list in
        the order of the setting's maps. One map: its values as they are;
        several: the largest of their standardised values.
        """
        names = components(setting)
        values = [anomaly[n] for n in names] if isinstance(anomaly, dict) else list(anomaly)
        if len(names) == 1:
            return values[0]
        means, scales = self.standardise(setting)
        return np.max([(v - m) / sc for v, m, sc in zip(values, means, scales, strict=True)],
                      axis=0)

    def fused_maps(self, setting: dict, maps: list, pooled: list) -> torch.Tensor:
        """A batch's map of ``setting`` from its maps and their pooled values.

        One map: itself. Several: for each image, the standardised map of the
        one with the largest standardised pooled value, so that the fused map
        pooled is the fused score.
        """
        if len(maps) == 1:
            return maps[0]
        means, scales = self.standardise(setting)
        means = torch.as_tensor(means, device=maps[0].device)
        scales = torch.as_tensor(scales, device=maps[0].device)
        z = (torch.stack(pooled) - means[:, None]) / scales[:, None]  # (maps, n)
        chosen = z.argmax(0)
        stacked = torch.stack(maps)  # (maps, n, H, W)
        rows = torch.arange(stacked.shape[1], device=stacked.device)
        picked = stacked[chosen, rows]
        return ((picked.double() - means[chosen, None, None]) / scales[chosen, None, None]).float()

    def score_batches(self, batches, settings: list[dict], keep_maps: bool = False,
                      training: bool = False):
        """Yield ``(scores, maps)`` for each batch, from one network pass.

        ``scores`` is a list with each setting's image scores (minus its map
        pooled; for a fused setting, minus the largest standardised pooled
        value); ``maps`` is the first setting's map of each image as NumPy
        when ``keep_maps`` (else None). ``training``: see :meth:`iter_maps`.
        The callers check the scores with :meth:`check_finite`.
        """
        bases, plan = expand(settings)
        for setting in settings:  # refuse a bad calibration before the pass
            if len(components(setting)) > 1:
                self.standardise(setting)
        for maps in self.iter_maps(batches, bases, training=training):
            pooled = [pool(m, b["score_pooling"]) for m, b in zip(maps, bases, strict=True)]
            anomaly = [v.cpu().numpy() for v in pooled]
            scores = [-self.fuse(setting, [anomaly[i] for i in used])
                      for setting, used in zip(settings, plan, strict=True)]
            kept = None
            if keep_maps:
                kept = self.fused_maps(settings[0], [maps[i] for i in plan[0]],
                                       [pooled[i] for i in plan[0]]).cpu().numpy()
            yield scores, kept

    def scores(self, batches, settings: list[dict], training: bool = False) -> list:
        """Each setting's image scores of all the batches (see :meth:`score_batches`).

        Raises ``FloatingPointError`` if a score is NaN or infinite, rather
        than let ``predict`` label such images (NaN compares as normal).
        """
        parts = [s for s, _ in self.score_batches(batches, settings, training=training)]
        scores = [np.concatenate([p[i] for p in parts]) for i in range(len(settings))]
        for setting, values in zip(settings, scores, strict=True):
            self.check_finite(values, setting, "image scores")
        return scores

    def calibrate(self, batches, params: dict, contamination, training: bool = False) -> dict:
        """The calibration of validated scoring ``params`` on normal images, as fitted attributes.

        One pass of the net over ``batches``: every map of ``SCORES`` is
        pooled under ``params`` (the prior's with each image's own codes left
        out when ``training``: the batches are the images counted in
        ``code_counts``); their means and standard deviations calibrate the
        fused scores (``score_calibration_``), the score of ``params`` sets
        ``offset_`` (:func:`~skvqad.thresholds.offset_from_scores`) and the
        highest pixel of each image's own map sets ``map_scale_``.
        """
        needs_bank = params["alignment"] == "bank" and self.bank is None
        bases = [b for b in SCORES if not (needs_bank and "am" in b.split("+"))]
        own = components(params)
        scores = self.scores(
            batches, [dict(params, score_map=b) for b in bases]
            + [dict(params, score_map=c, score_pooling="max") for c in own], training=training)
        anomaly = {b: -s for b, s in zip(bases, scores, strict=False)}
        calibrated = replace(
            self, calibration={b: (float(a.mean()), float(a.std())) for b, a in anomaly.items()},
            calibration_params=calibration_key(params))
        # The highest pixel of each image's map (for a fused map: the standardised map of the
        # map that sets the image's score), as fused maps choose it.
        peaks = [-s for s in scores[len(bases):]]
        if len(own) > 1:
            means, scales = calibrated.standardise(params)
            z = [(anomaly[c] - m) / sc for c, m, sc in zip(own, means, scales, strict=True)]
            peaks = [np.choose(np.argmax(z, axis=0),
                               [(p - m) / sc for p, m, sc in zip(peaks, means, scales, strict=True)])]
        return {
            "score_calibration_": calibrated.calibration,
            "calibration_params_": calibrated.calibration_params,
            "offset_": offset_from_scores(-calibrated.fuse(params, anomaly), contamination),
            "map_scale_": float(np.quantile(peaks[0], 0.99)),
        }

    def check_finite(self, values: np.ndarray, setting: dict, what: str) -> None:
        """Raise ``FloatingPointError`` naming the likely cause if ``values`` are not all finite."""
        bad = int((~np.isfinite(values)).sum())
        if not bad:
            return
        weights_ok = all(bool(torch.isfinite(p).all()) for p in self.net.module_.parameters())
        cause = (
            "the network's weights are finite, so look at the scoring parameters "
            f"({ {k: setting[k] for k in SCORING_PARAMS} })"
            if weights_ok
            else "the network's weights hold NaN or infinite values: refit it "
            "(check history_ for a diverging loss; try a lower lr or "
            "mixed_precision=False), or load an intact copy"
        )
        raise FloatingPointError(f"{bad} of {values.size} {what} are NaN or infinite; {cause}.")

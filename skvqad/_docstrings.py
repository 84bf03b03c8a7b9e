"""Docstring pieces written once and filled into several docstrings."""

from __future__ import annotations


def fill_doc(pieces: dict[str, list[str]]):
    r"""A decorator that replaces each line ``{name}`` of a docstring by ``pieces[name]``.

    A piece is a parameter's (or attribute's) line, then its description.
    It takes the placeholder's indentation (its description four spaces
    more), whether or not the compiler stripped the docstring's common
    indentation (Python 3.13 does). Works on functions and classes (on a
    class, in its methods' docstrings too).

    Examples
    --------
    >>> from skvqad._docstrings import fill_doc
    >>> def f(x):
    ...     pass
    >>> f.__doc__ = "Parameters\n----------\n{x}"
    >>> print(fill_doc({"x": ["x : int", "The value."]})(f).__doc__)
    Parameters
    ----------
    x : int
        The value.
    """

    def fill(obj):
        if isinstance(obj, type):  # a class: its methods' docstrings too
            for member in vars(obj).values():
                member = getattr(member, "__func__", member)  # classmethod, staticmethod
                if callable(member) and getattr(member, "__doc__", None):
                    fill(member)
        if not obj.__doc__:  # None under python -OO
            return obj
        lines = []
        for line in obj.__doc__.split("\n"):
            name = line.strip()[1:-1] if line.strip().startswith("{") else None
            if name in pieces:
                indent = line[: len(line) - len(line.lstrip())]
                head, *body = pieces[name]
                lines += [indent + head] + [indent + "    " + text for text in body]
            else:
                lines.append(line)
        obj.__doc__ = "\n".join(lines)
        return obj

    return fill


#: The ``X`` of the fitted detector's methods.
X_FITTED_DOC: dict[str, list[str]] = {
    "X_fitted": ["X : array-like of shape (n, H, W), (n, H, W, C) or (n, d)",
                 "Images of the shape seen in ``fit``."],
}

#: The scoring parameters of :class:`~skvqad.VQVAEAnomalyDetector` (``SCORING_PARAMS``),
#: described once: the detector and :meth:`~skvqad.VQVAEAnomalyDetector.score_samples_multi`'s
#: settings take them all, :func:`skvqad.maps.anomaly_map` the six that shape an SSIM or
#: dilated map, by the same names and with the same defaults.
SCORING_PARAM_DOCS: dict[str, list[str]] = {
    "score_map": [
        'score_map : {"ssim+am", "ssim", "am", "prior"} or tuple, default="ssim+am"',
        'The anomaly map that scores the images: ``"ssim"`` is ``1 - SSIM`` (SM); ``"am"`` the',
        "alignment map upsampled to the image size and grey-dilated;",
        '``"ssim+am"`` their product (Section II-C). Not in the paper:',
        "``\"prior\"`` is the code prior's map, ``-log p(k | p)`` of the code",
        "``k`` chosen at each latent position ``p``, where ``p(k | p)`` counts",
        "the codes that the training images chose there",
        "(:func:`skvqad.maps.code_log_prior`), upsampled and dilated like the",
        "AM. A tuple of",
        "these names, such as ``(\"am\", \"prior\")``, fuses them: each map's",
        "pooled score is standardised with the mean and standard deviation of",
        "the training images' scores (``score_calibration_``), and an image's",
        "score is the highest of these z-scores, so the image is as anomalous",
        "as its most surprising map says (see Notes).",
    ],
    "alignment": [
        'alignment : {"squared", "relative", "bank"}, default="squared"',
        "How the AM measures each encoder output's distance: to its codebook",
        "vector, ``\"squared\"`` is the paper's ``||z_e - e||^2`` (eq. 6) and",
        '``"relative"`` divides it by ``||z_e||^2``; ``"bank"`` is the squared',
        "distance to the nearest vector of ``bank_``, a sample of the training",
        "images' encoder outputs (the codebook summarises them in M vectors;",
        "the bank keeps up to ``bank_size`` of them). The squared distance",
        "grows with the scale of ``z_e``, which follows the local contrast of",
        "the image, so that high-contrast normal images score as anomalous;",
        "the relative one does not (see the user guide for measurements).",
    ],
    "ssim_window": [
        "ssim_window : int, default=11",
        "Side of the Gaussian SSIM window (odd).",
    ],
    "ssim_sigma": [
        "ssim_sigma : float, default=1.5",
        "Standard deviation of the Gaussian SSIM window, in pixels: the scale",
        "of the structures that SSIM compares (1.5 with an 11 px window, as in",
        "Wang et al. 2004). The window should span about 3.3 sigma each side",
        "(21 for 3, 31 for 4.5); a larger window changes nothing.",
    ],
    "ssim_constants": [
        "ssim_constants : tuple of two floats or None, default=None",
        "``(c1, c2)`` of eq. 5. None: Wang et al.'s ``(0.01)^2`` and",
        "``(0.03)^2`` for images in [0, 1]. The paper's text writes",
        "``c1 = 0.01`` and ``c2 = 0.03``; such larger constants make the map",
        "less sensitive to small differences in flat patches and closer to a",
        "locally averaged squared error.",
    ],
    "channel_reduction": [
        'channel_reduction : {"mean", "max"}, default="mean"',
        "How the ``1 - SSIM`` maps of the channels of a color image become",
        "one map: their mean (as scikit-image's SSIM does) or their maximum",
        "(the worst channel).",
    ],
    "dilation_radius": [
        "dilation_radius : int, default=2",
        "Radius in pixels of the flat square structuring element of the grey",
        "dilation of the upsampled AM (and of the upsampled prior map); 0",
        "disables the dilation.",
    ],
    "ssim_dilation_radius": [
        "ssim_dilation_radius : int, default=0",
        "Radius of a grey dilation of the ``1 - SSIM`` map (after the channel",
        "reduction), which the paper found much better on UCSD-Ped1",
        "(Section III-C); 0 disables it.",
    ],
    "prior_smoothing": [
        "prior_smoothing : float, default=0.5",
        "The pseudo-count added to every code's count in the code prior",
        "(``\"prior\"`` maps); 0.5 is Jeffreys' prior.",
    ],
    "prior_radius": [
        "prior_radius : int, default=0",
        "The code prior at a latent position pools the counts of the",
        "positions within this radius (a square of side ``2 r + 1``): 0 keeps",
        "one table per position, for aligned images; a radius as large as the",
        "latent grid makes it position-free.",
    ],
    "score_pooling": [
        'score_pooling : {"mean", "max"} or float in (0, 1), default="mean"',
        "How each image's map becomes its score (minus the pooled value): the",
        "paper's mean, the maximum, or a float ``q`` for the q-quantile of the",
        "map's pixels (linear interpolation, as :func:`numpy.quantile`). The",
        "mean is dominated by the normal area when a defect covers a small",
        "part of the image; the maximum or a high quantile is not.",
    ],
}

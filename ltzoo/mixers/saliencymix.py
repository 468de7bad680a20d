"""SaliencyMix (Uddin et al., "SaliencyMix: A Saliency Guided Data Augmentation Strategy for
Better Regularization", ICLR 2021).

As CutMix, but the box (its size from lam ~ Beta(alpha, alpha)) is centred on the peak of the
partner image's spectral-residual saliency map (Hou & Zhang, "Saliency Detection: A Spectral
Residual Approach", CVPR 2007), cut from the partner and pasted at the same place in the
target; lam = 1 - box area / (H W). The saliency map is computed in torch for the whole batch.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ltzoo.mixers.base import (
    PairMixer,
    box_area_ratio,
    centred_boxes,
    check_alpha,
    paste_boxes,
)
from ltzoo.registry import MIXERS

__all__ = ["SaliencyMix", "spectral_residual_saliency", "saliency_peaks"]

_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 grey weights for 3-channel images


def _gaussian_kernel(sigma: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    radius = max(1, int(math.ceil(3.0 * sigma)))
    t = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def _blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, 1, H, W) with zero padding.

    Zero (not reflected) borders: a reflected border would add a mirror image of a salient
    spot near the edge to itself and pull the peak into the corner.
    """
    k = _gaussian_kernel(sigma, img.device, img.dtype)
    r = k.numel() // 2
    img = F.conv2d(img, k.view(1, 1, -1, 1), padding=(r, 0))
    return F.conv2d(img, k.view(1, 1, 1, -1), padding=(0, r))


def spectral_residual_saliency(x: torch.Tensor, max_size: int | None = 64, blur_sigma: float = 3.0,
                               rel_tol: float = 1e-5) -> torch.Tensor:
    """Spectral-residual saliency maps of a batch of images (Hou & Zhang, CVPR 2007).

    Grey image I; A = log|FFT(I)|, P = angle(FFT(I)); residual R = A - mean3x3(A) (circular
    3x3 mean, the spectrum being periodic); S = Gaussian(|IFFT(exp(R + iP))|^2). Frequencies
    whose amplitude is below ``rel_tol`` times the image's largest one (round-off level: their
    phase is noise) are floored in A and left out of the reconstruction; natural images have no
    such frequencies, synthetic flat ones (a blob on a constant background) do.

    Args:
        x: Images (B, C, H, W).
        max_size: Images whose longer side exceeds this are first downsampled (area) so that it
            equals ``max_size``, as Hou & Zhang (64 px) and OpenCV do; None keeps full size.
        blur_sigma: Standard deviation of the final Gaussian blur, in (possibly downsampled) pixels.
        rel_tol: Relative amplitude below which a frequency is dropped.

    Returns:
        (B, h, w) float32 saliency maps (``h, w`` the possibly downsampled size).
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"x must be a (B, C, H, W) tensor, got {getattr(x, 'shape', type(x).__name__)}")
    x = x.float()
    if x.shape[1] == 3:
        grey = torch.einsum("bchw,c->bhw", x, x.new_tensor(_LUMA))[:, None]
    else:
        grey = x.mean(dim=1, keepdim=True)
    h, w = grey.shape[-2:]
    if max_size is not None and max(h, w) > max_size:
        scale = max_size / max(h, w)
        grey = F.interpolate(grey, size=(max(1, round(h * scale)), max(1, round(w * scale))), mode="area")
    spec = torch.fft.fft2(grey)
    amp = spec.abs()
    # amplitudes at round-off level carry no phase information: floor them, then drop them
    tol = rel_tol * amp.amax(dim=(-2, -1), keepdim=True).clamp_min(torch.finfo(amp.dtype).tiny)
    log_amp = torch.log(amp.clamp_min(tol))
    # Hou & Zhang Eq. (5): R(f) = L(f) - h_3 * L(f), h_3 the 3x3 mean filter
    padded = F.pad(log_amp, (1, 1, 1, 1), mode="circular")
    weight = torch.exp(log_amp - F.avg_pool2d(padded, 3, stride=1)) * (amp > tol)
    # Eq. (6): S(x) = g(x) * |F^-1[exp(R(f) + i P(f))]|^2
    recon = torch.fft.ifft2(torch.polar(weight, torch.angle(spec)))
    return _blur(recon.abs().square(), blur_sigma)[:, 0]


def saliency_peaks(x: torch.Tensor, max_size: int | None = 64,
                   blur_sigma: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, col) of each image's saliency peak, in the coordinates of ``x`` ((B,) int64 each)."""
    sal = spectral_residual_saliency(x, max_size, blur_sigma)
    h, w = sal.shape[-2:]
    flat = sal.flatten(1).argmax(dim=1)
    row, col = flat // w, flat % w
    big_h, big_w = x.shape[-2:]
    # centre of the peak's cell mapped back to full resolution
    row = torch.floor((row.double() + 0.5) * big_h / h).long().clamp(0, big_h - 1)
    col = torch.floor((col.double() + 0.5) * big_w / w).long().clamp(0, big_w - 1)
    return row, col


@MIXERS.register("saliencymix")
class SaliencyMix(PairMixer):
    """SaliencyMix with a partner from the batch or an explicit one (see :class:`PairMixer`).

    Args:
        alpha: Beta(alpha, alpha) concentration (> 0) for the box size.
        per_sample: One lam (box size) per sample instead of one per batch; the box centres
            are per sample either way (each partner's own saliency peak).
        max_size: Saliency is computed at most at this side length (see
            :func:`spectral_residual_saliency`).
        blur_sigma: Gaussian blur of the saliency map.
        generator: Default ``torch.Generator`` for the permutation and lam.
    """

    def __init__(self, alpha: float = 1.0, per_sample: bool = False, max_size: int | None = 64,
                 blur_sigma: float = 3.0, generator: torch.Generator | None = None) -> None:
        super().__init__(alpha, per_sample, generator)
        if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 3):
            raise ValueError(f"max_size must be an integer >= 3 or None, got {max_size!r}")
        self.max_size = max_size
        self.blur_sigma = check_alpha(blur_sigma, "blur_sigma")

    def mix(self, x, partner_x, lam, generator):
        height, width = x.shape[-2], x.shape[-1]
        with torch.no_grad():
            cy, cx = saliency_peaks(partner_x, self.max_size, self.blur_sigma)  # the source (partner) image's peak
        boxes = centred_boxes(cy, cx, lam, height, width)
        lam = 1.0 - box_area_ratio(boxes, height, width)
        return paste_boxes(x, partner_x, boxes), lam, boxes

    def __repr__(self) -> str:
        return f"SaliencyMix(alpha={self.alpha}, per_sample={self.per_sample}, max_size={self.max_size})"

"""SaliencyMix: the spectral-residual map against a numpy/scipy computation, and box placement."""
import numpy as np
import pytest
import torch
from scipy import ndimage

import ltzoo
from ltzoo.mixers.saliencymix import SaliencyMix, saliency_peaks, spectral_residual_saliency


def _numpy_spectral_residual(grey: np.ndarray, sigma: float) -> np.ndarray:
    """Hou & Zhang (CVPR 2007) Eqs. 3-6 written with numpy.fft and scipy.ndimage."""
    spec = np.fft.fft2(grey)
    log_amp = np.log(np.abs(spec))
    residual = log_amp - ndimage.uniform_filter(log_amp, size=3, mode="wrap")
    sal = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spec)))) ** 2
    return ndimage.gaussian_filter(sal, sigma, mode="constant", truncate=3.0)


def test_saliency_map_matches_independent_computation():
    rng = np.random.default_rng(0)
    img = rng.random((2, 3, 24, 24)).astype(np.float32)
    ours = spectral_residual_saliency(torch.from_numpy(img), max_size=None, blur_sigma=2.0).numpy()
    for i in range(2):
        grey = np.tensordot([0.299, 0.587, 0.114], img[i].astype(np.float64), axes=1)
        ref = _numpy_spectral_residual(grey, 2.0)
        np.testing.assert_allclose(ours[i], ref, rtol=2e-3, atol=2e-3 * ref.max())


def _blob_image(size, r, c, radius=1, background=0.3):
    x = torch.full((3, size, size), background)
    x[:, r - radius:r + radius + 1, c - radius:c + radius + 1] = 1.0
    return x


@pytest.mark.parametrize("size,radius", [(32, 1), (224, 3)])
def test_box_is_centred_on_the_partners_blob(size, radius):
    g = torch.Generator().manual_seed(0)
    centres = [(size // 5, size // 2), (size // 2, size * 4 // 5), (size * 3 // 4, size // 4), (size // 2, size // 2)]
    px = torch.stack([_blob_image(size, r, c, radius) for r, c in centres])
    x = torch.zeros_like(px)
    y, py = torch.zeros(4, dtype=torch.long), torch.arange(1, 5)
    mb = SaliencyMix(alpha=1.0, per_sample=True, generator=g)(x, y, partner_x=px, partner_y=py)
    assert torch.equal(mb.y_b, py)
    tol = 1 if size <= 64 else size // 64 + 1  # the map is computed at 64 px for larger images
    for i, (r, c) in enumerate(centres):
        y0, x0, y1, x1 = mb.boxes[i].tolist()
        assert y0 <= r - radius and r + radius < y1 and x0 <= c - radius and c + radius < x1  # contains the blob
        if y0 > 0 and x0 > 0 and y1 < size and x1 < size:  # unclipped: centred on it
            assert abs((y0 + y1) / 2 - r) <= tol and abs((x0 + x1) / 2 - c) <= tol
        assert torch.equal(mb.x[i, :, y0:y1, x0:x1], px[i, :, y0:y1, x0:x1])
        outside = torch.ones(size, size, dtype=torch.bool)
        outside[y0:y1, x0:x1] = False
        assert torch.all(mb.x[i][:, outside] == 0)  # the rest stays the zero target
        assert mb.lam[i].item() == pytest.approx(1 - (y1 - y0) * (x1 - x0) / size**2, abs=1e-7)


def test_in_batch_partner_uses_the_partners_saliency():
    size = 32
    centres = [(6, 6), (6, 25), (25, 6), (25, 25), (16, 16)]
    x = torch.stack([_blob_image(size, r, c) for r, c in centres])
    y = torch.arange(5)
    mb = ltzoo.create_mixer("saliencymix", alpha=4.0)(x, y, generator=torch.Generator().manual_seed(3))
    idx = mb.partner_index
    assert torch.equal(mb.y_b, y[idx])
    for i in range(5):
        r, c = centres[idx[i]]
        y0, x0, y1, x1 = mb.boxes[i].tolist()
        assert y0 <= r < y1 and x0 <= c < x1


def test_saliency_peaks_on_gaussian_blobs():
    size, sigma = 48, 2.0
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    centres = [(12, 30), (30, 12), (24, 24), (35, 37)]
    x = torch.stack([
        (0.2 + torch.exp(-((yy - r) ** 2 + (xx - c) ** 2) / (2 * sigma**2))).expand(3, -1, -1) for r, c in centres
    ])
    rows, cols = saliency_peaks(x)
    for i, (r, c) in enumerate(centres):
        assert abs(rows[i].item() - r) <= 1 and abs(cols[i].item() - c) <= 1


def test_single_image_and_bad_arguments():
    x = _blob_image(16, 8, 8)[None]
    with pytest.raises(ValueError, match="partner_x"):
        SaliencyMix()(x, torch.zeros(1))
    mb = SaliencyMix()(x, torch.zeros(1), partner_x=x, partner_y=torch.ones(1))
    assert mb.boxes.shape == (1, 4)
    with pytest.raises(ValueError, match="alpha"):
        SaliencyMix(alpha=-1.0)
    with pytest.raises(ValueError, match="max_size"):
        SaliencyMix(max_size=0)
    with pytest.raises(ValueError, match="blur_sigma"):
        SaliencyMix(blur_sigma=0.0)

import math

import pytest
import torch

from astrobio.errors import InputValidationError
from astrobio.models.spectrum import SpectrumEncoder, SpectrumEncoderConfig


def model():
    torch.manual_seed(0)
    return SpectrumEncoder(SpectrumEncoderConfig.from_name("tiny"))


def spectra(B=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    wl = torch.linspace(0.6, 12.0, 1000).expand(B, 1000)
    depth = 5000 + 30 * torch.randn(B, 1000, generator=g)
    sigma = 20 + 20 * torch.rand(B, 1000, generator=g)
    return torch.stack([wl, depth, sigma], dim=-1)


def test_shapes():
    out = model()(spectra())
    n_tok = 1 + math.ceil(1000 / 2**4)  # global token + stride-2^4 stem
    assert out["tokens"].shape == (2, n_tok, 32)
    assert out["features"].shape == (2, 32)


def test_missing_spectrum_is_finite():
    x = spectra()
    x[1] = 0.0
    out = model()(x)
    assert torch.isfinite(out["tokens"]).all() and torch.isfinite(out["features"]).all()


def test_depth_is_whitened_by_sigma_around_the_baseline():
    m = model()
    x = spectra(1)
    chans, glob = m.featurize(x)
    wl, depth, sigma = x.unbind(-1)
    base = depth.median(-1, keepdim=True).values
    assert torch.allclose(chans[:, 0], (depth - base) / sigma)
    assert torch.allclose(chans[:, 1], torch.log10(sigma))
    # scaling the features and the noise together leaves the significance channel unchanged
    y = torch.stack([wl, base + 3 * (depth - base), 3 * sigma], dim=-1)
    assert torch.allclose(m.featurize(y)[0][:, 0], chans[:, 0], atol=1e-5)
    # a grey offset (larger planet) moves only the global baseline, not the per-bin channels
    z = torch.stack([wl, depth + 1000.0, sigma], dim=-1)
    c2, g2 = m.featurize(z)
    assert torch.allclose(c2, chans, atol=1e-4)
    assert g2[0, 0] > glob[0, 0]


def test_log_wavelength_fourier_features():
    m = model()
    x = spectra(1)
    chans, _ = m.featurize(x)
    u = torch.log(x[0, :, 0] / 0.6) / math.log(12.0 / 0.6)
    assert torch.allclose(chans[0, 3], torch.sin(math.pi * u), atol=1e-5)  # first frequency π
    assert torch.allclose(chans[0, 3 + m.config.n_fourier], torch.cos(math.pi * u), atol=1e-5)


def test_bad_shape_raises():
    with pytest.raises(InputValidationError):
        model()(torch.zeros(2, 999, 3))
    with pytest.raises(InputValidationError):
        SpectrumEncoder(SpectrumEncoderConfig(wl_min_um=5.0, wl_max_um=1.0))

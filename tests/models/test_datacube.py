import dataclasses

import pytest
import torch

from astrobio.errors import InputValidationError
from astrobio.models.datacube import ClimateDatacubeModel, DatacubeConfig, latitude_weighted_mse, sincos_3d


def tiny(**kw):
    torch.manual_seed(0)
    return ClimateDatacubeModel(dataclasses.replace(DatacubeConfig.from_name("tiny"), **kw))


def test_demo_grid_shapes():
    m = tiny()
    out = m(torch.randn(2, 2, 12, 8, 16, 5))
    assert out["reconstruction"].shape == (2, 2, 12, 8, 16, 5)
    assert out["features"].shape == (2, 32)
    assert out["tokens"].shape == (2, (12 // 4) * (8 // 4) * (16 // 4), 32)


def test_seed_grid_shapes():
    m = tiny(n_levels=10, patch_size=(3, 8, 8))
    out = m(torch.randn(1, 2, 12, 32, 64, 10))
    assert out["reconstruction"].shape == (1, 2, 12, 32, 64, 10)
    assert out["tokens"].shape == (1, 4 * 4 * 8, 32)
    assert torch.isfinite(out["reconstruction"]).all()


def test_prediction_is_residual_over_input():
    m = tiny()
    for mod in (m.head, m.skip):
        torch.nn.init.zeros_(mod.weight)
        torch.nn.init.zeros_(mod.bias)
    x = torch.randn(2, 2, 12, 8, 16, 5)
    assert torch.equal(m(x)["reconstruction"], x)  # Δ = 0 → persistence of the prior cube


def test_stem_is_periodic_in_longitude_and_month():
    m = tiny()
    x = torch.randn(1, 2, 12, 8, 16, 5)
    s = m._stem(x)  # (B, V*C, T, lat, lon)
    rolled = m._stem(torch.roll(x, shifts=(3, 5), dims=(2, 4)))
    assert torch.allclose(rolled, torch.roll(s, shifts=(3, 5), dims=(2, 4)), atol=1e-5)


def test_latitude_weighted_mse_exact():
    lat = torch.tensor([-60.0, 0.0, 60.0])  # cos = 0.5, 1, 0.5 → weights 0.75, 1.5, 0.75
    pred = torch.zeros(1, 3, 1, 1)
    target = torch.zeros(1, 3, 1, 1)
    target[0, 1] = 1.0  # unit error at the equator only
    assert latitude_weighted_mse(pred, target, lat).item() == pytest.approx(1.5 / 3)
    target = torch.zeros(1, 3, 1, 1)
    target[0, 0] = 2.0  # error 2 at 60°S
    assert latitude_weighted_mse(pred, target, lat).item() == pytest.approx(4 * 0.75 / 3)


def test_latitude_weighted_mse_rejects_mismatch():
    with pytest.raises(InputValidationError):
        latitude_weighted_mse(torch.zeros(1, 3, 1, 1), torch.zeros(1, 4, 1, 1), torch.zeros(3))
    with pytest.raises(InputValidationError):
        latitude_weighted_mse(torch.zeros(1, 3, 1, 1), torch.zeros(1, 3, 1, 1), torch.zeros(4))


def test_bad_inputs_raise():
    m = tiny()
    with pytest.raises(InputValidationError):
        m(torch.randn(1, 3, 12, 8, 16, 5))  # 3 variables
    with pytest.raises(InputValidationError):
        m(torch.randn(1, 2, 12, 8, 18, 5))  # lon not a multiple of the patch
    with pytest.raises(InputValidationError):
        DatacubeConfig.from_name("huge")
    with pytest.raises(InputValidationError):
        ClimateDatacubeModel(dataclasses.replace(DatacubeConfig(), out_vars=3))


def test_sincos_positions_distinct():
    pe = sincos_3d(2, 3, 4, 32)
    assert pe.shape == (24, 32)
    assert torch.cdist(pe, pe).add(torch.eye(24)).min() > 0  # every patch position is distinct


def test_xl_has_about_2_5_billion_parameters():
    with torch.device("meta"):
        m = ClimateDatacubeModel(DatacubeConfig.from_name("xl"))
    n = sum(p.numel() for p in m.parameters())
    assert abs(n - 2.5e9) / 2.5e9 < 0.02

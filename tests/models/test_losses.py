import dataclasses
import math
from types import SimpleNamespace

import pytest
import torch

from astrobio.errors import InputValidationError
from astrobio.models.losses import (LossConfig, compute_multimodal_loss, consistency_loss, physics_losses,
                                    saturation_specific_humidity, saturation_vapour_pressure,
                                    spectrum_head_loss, target_surface_pressure_bar)


def phys(batch, cube, config=LossConfig(), **kw):
    args = dict(stats=batch.datacube_stats, sigma_levels=batch.sigma_levels, lat_deg=batch.lat_deg,
                instellation_wm2=batch.instellation_wm2, surface_pressure_bar=batch.surface_pressure_bar)
    args.update(kw)
    return physics_losses(cube, config=config, **args)


def raw_to_norm(batch, raw):
    m, s = batch.datacube_stats["mean"], batch.datacube_stats["std"]
    return (raw - m[None, :, None, None, None, None]) / s[None, :, None, None, None, None]


def norm_to_raw(batch, x):
    m, s = batch.datacube_stats["mean"], batch.datacube_stats["std"]
    return x * s[None, :, None, None, None, None] + m[None, :, None, None, None, None]


def test_saturation_known_values():
    assert saturation_vapour_pressure(torch.tensor(273.16)).item() == pytest.approx(611.657)
    # Murphy & Koop (2005): e_s(300 K) = 3536 Pa over liquid water
    assert saturation_vapour_pressure(torch.tensor(300.0)).item() == pytest.approx(3536, rel=0.03)
    # q_sat at 288 K, 1013.25 hPa ≈ 10.6 g/kg
    assert saturation_specific_humidity(torch.tensor(288.0), torch.tensor(101325.0)).item() == pytest.approx(
        0.0106, rel=0.04)
    assert saturation_specific_humidity(torch.tensor(400.0), torch.tensor(1.0e4)).item() == 1.0  # boiling cap


def test_saturation_matches_the_world_climate_model():
    import numpy as np

    from astrobio.world import climate

    T = torch.linspace(150.0, 420.0, 28, dtype=torch.float64)[:, None]
    p = torch.tensor([1e3, 2e4, 1e5, 1e6], dtype=torch.float64)[None, :]
    ref = climate.saturation_specific_humidity(T.numpy(), p.numpy())
    assert np.allclose(saturation_specific_humidity(T, p).numpy(), ref, rtol=1e-12, atol=0)


def test_physics_loss_zero_on_consistent_cube(batch):
    out = phys(batch, batch.datacube_target)
    assert {k: v.item() for k, v in out.items()} == {"humidity": 0.0, "lapse_rate": 0.0, "energy_balance": 0.0}


def test_true_surface_pressure_from_the_label(batch):
    k = 2  # REGRESSION_KEYS.index("surface_pressure_bar")
    batch.regression_stats = {"mean": torch.full((7,), 0.5), "std": torch.full((7,), 2.0)}
    batch.regression_targets[:, k] = torch.tensor([0.25, 1.0, float("nan"), -1.0])
    # 0.5 + 2 x: 1.0 and 2.5 bar; NaN and a non-positive pressure fall back to the prior 1 bar
    assert torch.equal(target_surface_pressure_bar(batch), torch.tensor([1.0, 2.5, 1.0, 1.0]))


def test_total_loss_physics_is_zero_for_the_true_cube(batch):
    from astrobio.models.system import SystemConfig, UnifiedMultiModalSystem

    torch.manual_seed(0)
    cfg = SystemConfig.from_name("tiny")
    with torch.no_grad():
        out = UnifiedMultiModalSystem(cfg)(batch)
    out["datacube"]["reconstruction"] = batch.datacube_target.clone()
    loss = compute_multimodal_loss(out, batch, cfg.loss)
    assert loss["physics"].item() == 0.0 and loss["datacube"].item() == 0.0
    assert loss["total"].item() > 0.0


def test_supersaturation_is_penalised(batch):
    raw = norm_to_raw(batch, batch.datacube_target)
    T = raw[0, 0, 0, 4, 4, 0]
    raw[0, 1, 0, 4, 4, 0] = 1.5 * saturation_specific_humidity(T, torch.tensor(1.0e5))
    out = phys(batch, raw_to_norm(batch, raw))
    assert out["humidity"] > 0 and out["lapse_rate"] == 0
    raw = norm_to_raw(batch, batch.datacube_target)
    raw[1, 1, 3, 2, 2, 1] = -1e-3  # negative humidity
    assert phys(batch, raw_to_norm(batch, raw))["humidity"] > 0


def test_temperature_inversion_is_penalised(batch):
    raw = norm_to_raw(batch, batch.datacube_target)
    raw[0, 0, :, :, :, 1] = raw[0, 0, :, :, :, 0] + 5.0  # σ = 0.8 warmer than the surface
    raw[0, 1] = 0.0  # keep humidity trivially valid
    out = phys(batch, raw_to_norm(batch, raw))
    assert out["lapse_rate"] > 0 and out["humidity"] == 0
    # above the tropopause an inversion is allowed (stratosphere)
    raw = norm_to_raw(batch, batch.datacube_target)
    raw[0, 0, ..., 4] = raw[0, 0, ..., 3] + 3.0  # σ = 0.2 warmer than σ = 0.4
    cfg = dataclasses.replace(LossConfig(), tropopause_sigma=0.5)
    raw[0, 1, ..., 4] = 0.0
    assert phys(batch, raw_to_norm(batch, raw), cfg)["lapse_rate"] == 0


def test_energy_balance_bound(batch):
    B = len(batch)
    # 100× the Earth's instellation cannot be carried away by a ~288 K surface
    assert phys(batch, batch.datacube_target, instellation_wm2=torch.full((B,), 1.361e5))["energy_balance"] > 0
    # a faint star is no violation: the greenhouse effect may keep the surface warm
    assert phys(batch, batch.datacube_target, instellation_wm2=torch.ones(B))["energy_balance"] == 0
    # unknown instellation (NaN) → term skipped
    assert phys(batch, batch.datacube_target, instellation_wm2=torch.full((B,), float("nan")))[
        "energy_balance"] == 0


def test_energy_balance_exact_on_isothermal_cube():
    from astrobio.constants import SIGMA_SB

    cube = torch.zeros(1, 2, 12, 2, 3, 2)
    cube[:, 0] = 200.0  # isothermal 200 K, dry
    stats = {"mean": torch.zeros(2), "std": torch.ones(2)}
    S = 4000.0  # minimum absorbed flux S (1 - 0.8) / 4 = 200 W m-2
    out = physics_losses(cube, stats, torch.tensor([1.0, 0.5]), torch.tensor([-45.0, 45.0]), torch.tensor([S]),
                         torch.ones(1), LossConfig())
    expected = ((S * 0.2 / 4 - SIGMA_SB * 200.0**4 * 1.1) / (S / 4)) ** 2
    assert out["energy_balance"].item() == pytest.approx(expected, rel=1e-5)
    assert out["lapse_rate"].item() == 0.0 and out["humidity"].item() == 0.0


def test_consistency_loss_exact():
    mask = torch.ones(3, 4, dtype=torch.bool)
    same = {k: torch.ones(3, 8) for k in ("datacube", "graph", "spectrum", "text")}
    # every planet looks the same: chance level ln(3)
    assert consistency_loss(same, mask, 0.1).item() == pytest.approx(math.log(3), rel=1e-5)
    eye = {k: torch.eye(3, 8) for k in same}
    aligned = consistency_loss(eye, mask, 0.1).item()
    assert aligned == pytest.approx(math.log(1 + 2 * math.exp(-10)), rel=1e-3)  # cos 1 vs 0, τ = 0.1
    only_one = torch.zeros(3, 4, dtype=torch.bool)
    only_one[0] = True
    z = {k: v.clone().requires_grad_() for k, v in eye.items()}
    loss = consistency_loss(z, only_one, 0.1)
    assert loss.item() == 0.0 and loss.requires_grad


def _head_batch(privileged):
    """Two runs, one target and (optionally) one privileged target each; only run 0 has a spectrum."""
    mask = torch.tensor([[True, True, True, True], [True, True, False, True]])
    return SimpleNamespace(regression_targets=torch.tensor([[1.0], [3.0]]), modality_mask=mask,
                           privileged_targets=torch.tensor([[2.0], [3.0]]) if privileged else None)


def test_spectrum_head_loss_exact_over_runs_with_a_spectrum():
    zero = torch.zeros(2, 2)
    assert spectrum_head_loss(zero, _head_batch(True)).item() == pytest.approx((1 + 4) / 2)  # run 1 not counted
    assert spectrum_head_loss(zero, _head_batch(False)).item() == pytest.approx(1.0)  # regression columns only
    b = _head_batch(True)
    b.regression_targets[0, 0] = math.nan  # an unknown target is left out, not a NaN loss
    assert spectrum_head_loss(zero, b).item() == pytest.approx(4.0)
    b.modality_mask[:, 2] = False  # no spectrum at all: 0, still differentiable
    pred = zero.clone().requires_grad_()
    loss = spectrum_head_loss(pred, b)
    assert loss.item() == 0.0 and loss.requires_grad


def test_loss_config_validation():
    for bad in (-0.1, math.inf, math.nan):
        with pytest.raises(InputValidationError, match="spectrum_head_weight"):
            LossConfig(spectrum_head_weight=bad)
    with pytest.raises(InputValidationError):
        LossConfig(albedo_range=(0.5, 0.2))
    with pytest.raises(InputValidationError):
        LossConfig(consistency_temperature=0.0)

"""Our vectorised seasonal EBM vs climlab's `EBM_seasonal` (Rose 2018, JOSS 3, 659) on the same grid.

Both models get Earth's orbit (climlab's default present-day orbit: e = 0.017236, obliquity 23.446 deg),
S0 = 1361 W m^-2, the same OLR line (A, B), diffusivity, mixed-layer heat capacity and an ice albedo of
0.77 below Spiegel's 268 K mid-point (climlab: a step function; ours: the smooth Spiegel tanh), and the
same warm 300 K start (climlab's default cold start, 12 - 40 P2(sin lat) degC, lands on the large-ice-cap
branch of this bistable model instead). A second case switches the ice albedo off in both models, so
that only the numerics differ. climlab integrates one planet at a time; ours integrates `n_planets`
at once and is timed per planet.

    .venv/bin/python benchmarks/climate_ebm.py [grid_name] [n_planets]
"""

from __future__ import annotations

import sys
import time
import warnings
from contextlib import contextmanager

import numpy as np

from astrobio.constants import S_EARTH
from astrobio.world import climate

CLIMLAB_SPINUP_YEARS = 15  # ~6 e-folding times of a 38 m mixed layer (C / B ~ 2.4 yr)
EARTH = dict(luminosity_lsun=1.0, semimajor_axis_au=1.0, eccentricity=0.017236, obliquity_deg=23.446,
             tidally_locked=False, rotation_period_days=0.99727, surface_pressure_bar=1.01325, co2_vmr=4.0e-4,
             ch4_vmr=1.8e-6, gravity_ms2=9.80665, surface_albedo=0.3, ocean_fraction=0.7)


def _our_parameters(x: climate.ClimateInputs) -> dict:
    """The EBM coefficients our model uses for planet 0, in climlab's terms."""
    pl = climate._planet_coefficients(x.validated())
    w, forcing = float(pl.w_water[0, 0, 0]), float(pl.forcing[0, 0, 0])
    return {"A": climate.OLR_A - forcing, "B": climate.OLR_B, "D": float(pl.diffusion[0, 0, 0]),
            "water_depth": float(pl.heat_capacity[0, 0, 0]) / (1000.0 * 4181.3),  # climlab rho_w c_w
            "a0": float(pl.warm_albedo[0, 0, 0]), "greenhouse_weight": w}


@contextmanager
def _ice_albedo(value: float):
    """Temporarily set our ice albedo (value = warm albedo switches the feedback off)."""
    saved = climate.ALBEDO_ICE
    climate.ALBEDO_ICE = value
    try:
        yield
    finally:
        climate.ALBEDO_ICE = saved


def _run_climlab(grid: climate.ClimateGrid, p: dict, ice: bool) -> tuple[np.ndarray, float, float, float]:
    """climlab zonal-mean annual T_s [K] (lat,), global mean [K], wall and CPU time [s]."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import climlab
    t0, c0 = time.perf_counter(), time.process_time()
    ice_kw = {"ai": climate.ALBEDO_ICE, "Tf": climate.T_ICE - 273.15} if ice else {}
    model = climlab.EBM_seasonal(num_lat=grid.nlat, S0=S_EARTH, a0=p["a0"], a2=0.0, A=p["A"], B=p["B"],
                                 D=p["D"], water_depth=p["water_depth"], T0=300.0 - 273.15, T2=0.0, **ice_kw)
    model.integrate_years(CLIMLAB_SPINUP_YEARS, verbose=False)
    model.integrate_years(1.0, verbose=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    zonal = np.asarray(model.timeave["Ts"]).ravel() + 273.15
    return zonal, float(climlab.global_mean(model.timeave["Ts"])) + 273.15, wall, cpu


def compare_with_climlab(grid_name: str = "demo", n_planets: int = 256, ice: bool = True) -> dict:
    """Per-planet wall time of both models and the difference of Earth's annual-mean T_s."""
    grid = climate.GRIDS[grid_name]
    x = climate.ClimateInputs(**{k: np.full(n_planets, v) for k, v in EARTH.items()})
    with _ice_albedo(climate.ALBEDO_ICE if ice else EARTH["surface_albedo"]):
        t0, c0 = time.perf_counter(), time.process_time()
        res = climate.run_climate(x, grid)
        ours_wall, ours_cpu = time.perf_counter() - t0, time.process_time() - c0
    ours_zonal = res.surface_temperature[0].mean(axis=(0, 2))
    params = _our_parameters(x)
    cl_zonal, cl_global, cl_wall, cl_cpu = _run_climlab(grid, params, ice)
    return {
        "grid": grid_name, "n_planets": n_planets, "nlat": grid.nlat, "ice_albedo": ice,
        "ours_ms_per_planet": 1e3 * ours_wall / n_planets, "ours_cpu_ms_per_planet": 1e3 * ours_cpu / n_planets,
        "climlab_ms_per_planet": 1e3 * cl_wall, "climlab_cpu_ms_per_planet": 1e3 * cl_cpu,
        "climlab_years": CLIMLAB_SPINUP_YEARS + 1, "speedup_cpu": cl_cpu / (ours_cpu / n_planets),
        "ours_global_mean_k": float(res.global_mean_surface_temperature_k[0]),
        "climlab_global_mean_k": cl_global,
        "zonal_rms_diff_k": float(np.sqrt(np.mean((ours_zonal - cl_zonal) ** 2))),
        "zonal_max_abs_diff_k": float(np.abs(ours_zonal - cl_zonal).max()),
        "lat_deg": grid.lat_deg.tolist(), "ours_zonal_k": ours_zonal.tolist(), "climlab_zonal_k": cl_zonal.tolist(),
        "shared_parameters": params,
    }


def _report(r: dict) -> None:
    print(f"grid {r['grid']} ({r['nlat']} lat), ice albedo {'on' if r['ice_albedo'] else 'off'}, "
          f"ours vectorised over {r['n_planets']} planets")
    print(f"{'model':<10}{'wall ms/planet':>16}{'CPU ms/planet':>15}{'global mean K':>15}")
    print(f"{'astrobio':<10}{r['ours_ms_per_planet']:>16.1f}{r['ours_cpu_ms_per_planet']:>15.1f}"
          f"{r['ours_global_mean_k']:>15.2f}")
    print(f"{'climlab':<10}{r['climlab_ms_per_planet']:>16.1f}{r['climlab_cpu_ms_per_planet']:>15.1f}"
          f"{r['climlab_global_mean_k']:>15.2f}")
    print(f"CPU speed-up {r['speedup_cpu']:.0f}x; zonal-mean T_s difference: rms {r['zonal_rms_diff_k']:.2f} K, "
          f"max {r['zonal_max_abs_diff_k']:.2f} K")
    print(f"{'lat':>8}{'astrobio':>10}{'climlab':>10}")
    for lat, a, b in zip(r["lat_deg"], r["ours_zonal_k"], r["climlab_zonal_k"]):
        print(f"{lat:>8.2f}{a:>10.2f}{b:>10.2f}")


def main(argv: list[str]) -> None:
    grid_name = argv[0] if argv else "demo"
    n = int(argv[1]) if len(argv) > 1 else 256
    for ice in (True, False):
        _report(compare_with_climlab(grid_name, n, ice))
        print()


if __name__ == "__main__":
    main(sys.argv[1:])

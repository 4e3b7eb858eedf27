"""Our vectorised seasonal EBM vs climlab's `EBM_seasonal` (Rose 2018, JOSS 3, 659), per planet, same grid.

Speed is the point: climlab integrates one planet at a time (here 15 spin-up years + 1 averaged year, ~6
e-folding times of its mixed layer); ours integrates `n_planets` at once and is timed per planet (CPU).
The physics differ (ours: Haqq-Misra et al. 2016 radiation, land and ocean tiles, Earth's geography;
climlab's EBM_seasonal: linear OLR, one mixed layer, step ice albedo), so climlab gets the nearest
shared parameters: North et al.'s A, B; our D_EARTH; our ocean mixed layer as its water depth; our
warm and snow albedos; Earth's orbit. Both are scored against the NCEP reanalysis zonal means
(resources/reference/earth_ncep_zonal_temperature.csv): area-weighted RMSE over 10-degree belts
north of 60S, as in tests/world/test_climate.py. climlab is not a dependency: `pip install climlab`.

    .venv/bin/python benchmarks/climate_ebm.py [grid_name] [n_planets]
"""

from __future__ import annotations

import os

# Single-threaded BLAS for both models, so that process CPU time is the work of one core (a threaded
# LAPACK spinning on a busy machine would inflate the CPU time of whichever model calls it).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

from astrobio.constants import S_EARTH  # noqa: E402
from astrobio.world import climate, radiation  # noqa: E402

CLIMLAB_SPINUP_YEARS = 15
EARTH = dict(luminosity_lsun=1.0, semimajor_axis_au=1.0, eccentricity=0.0167, obliquity_deg=23.44,
             tidally_locked=False, rotation_period_days=0.99727, surface_pressure_bar=1.01325, co2_vmr=4.0e-4,
             ch4_vmr=1.8e-6, gravity_ms2=9.80665, surface_albedo=0.3, ocean_fraction=0.7)
RHO_CP_WATER = 1000.0 * 4181.3  # climlab's water density times heat capacity, J m^-3 K^-1


def ncep_rmse(lat_edges_deg: np.ndarray, zonal_k: np.ndarray) -> float:
    """Area-weighted RMSE [K] of annual zonal means against the NCEP belts north of 60S."""
    rows = radiation._reference_rows("earth_ncep_zonal_temperature.csv")
    edges = np.array([float(r["lat_south_deg"]) for r in rows] + [90.0])
    obs = np.array([float(r["annual_k"]) for r in rows])
    model = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        w = np.diff(np.sin(np.deg2rad(np.clip(lat_edges_deg, lo, hi))))
        model.append((w * zonal_k).sum() / w.sum())
    sel = edges[:-1] >= -60.0
    area = np.diff(np.sin(np.deg2rad(edges)))[sel]
    return float(np.sqrt((area * (np.array(model) - obs)[sel] ** 2).sum() / area.sum()))


def _run_ours(grid: climate.ClimateGrid, n: int):
    x = climate.ClimateInputs(**{k: np.full(n, v) for k, v in EARTH.items()}, earth_geography=np.ones(n, bool))
    t0, c0 = time.perf_counter(), time.process_time()
    res = climate.run_climate(x, grid)
    return res, time.perf_counter() - t0, time.process_time() - c0


def _run_climlab(grid: climate.ClimateGrid):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import climlab
    warm = EARTH["surface_albedo"] + climate.CLOUD_ALBEDO
    t0, c0 = time.perf_counter(), time.process_time()
    model = climlab.EBM_seasonal(num_lat=grid.nlat, S0=S_EARTH, a0=warm, a2=0.0, ai=float(radiation.frozen_surface_albedo(5772.0)),
                                 Tf=climate.T_ICE - 273.15, A=climate.OLR_A, B=climate.OLR_B, D=climate.D_EARTH,
                                 water_depth=climate.C_OCEAN / RHO_CP_WATER, T0=300.0 - 273.15, T2=0.0)
    model.integrate_years(CLIMLAB_SPINUP_YEARS, verbose=False)
    model.integrate_years(1.0, verbose=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    zonal = np.asarray(model.timeave["Ts"]).ravel() + 273.15
    return zonal, float(climlab.global_mean(model.timeave["Ts"])) + 273.15, wall, cpu


def compare_with_climlab(grid_name: str = "demo", n_planets: int = 256) -> dict:
    grid = climate.GRIDS[grid_name]
    res, ours_wall, ours_cpu = _run_ours(grid, n_planets)
    ours_zonal = res.surface_temperature[0].mean(axis=(0, 2))
    cl_zonal, cl_global, cl_wall, cl_cpu = _run_climlab(grid)
    edges = np.rad2deg(grid.lat_edges_rad())
    return {"grid": grid_name, "nlat": grid.nlat, "n_planets": n_planets,
            "ours_ms_per_planet": 1e3 * ours_wall / n_planets, "ours_cpu_ms_per_planet": 1e3 * ours_cpu / n_planets,
            "climlab_ms_per_planet": 1e3 * cl_wall, "climlab_cpu_ms_per_planet": 1e3 * cl_cpu,
            "speedup_cpu": cl_cpu / (ours_cpu / n_planets),
            "ours_global_mean_k": float(res.global_mean_surface_temperature_k[0]), "climlab_global_mean_k": cl_global,
            "ours_ncep_rmse_k": ncep_rmse(edges, ours_zonal), "climlab_ncep_rmse_k": ncep_rmse(edges, cl_zonal)}


def main(argv: list[str]) -> None:
    grid_name = argv[0] if argv else "demo"
    n = int(argv[1]) if len(argv) > 1 else 256
    r = compare_with_climlab(grid_name, n)
    print(f"grid {r['grid']} ({r['nlat']} lat), Earth; ours vectorised over {r['n_planets']} planets")
    print(f"{'model':<10}{'wall ms/planet':>16}{'CPU ms/planet':>15}{'global mean K':>15}{'NCEP RMSE K':>13}")
    for name in ("ours", "climlab"):
        print(f"{name:<10}{r[name + '_ms_per_planet']:>16.1f}{r[name + '_cpu_ms_per_planet']:>15.1f}"
              f"{r[name + '_global_mean_k']:>15.2f}{r[name + '_ncep_rmse_k']:>13.2f}")
    print(f"CPU speed-up {r['speedup_cpu']:.0f}x")


if __name__ == "__main__":
    main(sys.argv[1:])

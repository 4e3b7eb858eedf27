"""The observer's retrieval against the truth, beside the HELA-style random forest.

    .venv/bin/python benchmarks/retrieval.py [--n-train 1200] [--n-test 400] [--seed 0]

Synthetic survey planets (the default survey design, demo resolution) are simulated; the random
forest (`evaluation.baselines.HelaRetrieval`, Márquez-Neila et al. 2018) is trained on the training
runs' binned spectra, the retrieval (`world.retrieval.retrieve`) needs no training. On the test runs
with a spectrum, grouped by transit count, it reports per gas the R^2 and RMSE of log10 VMR against
the truth (floored at 1e-12, as the labels are) for both, the 68 % / 95 % coverage of the retrieval's
intervals, the fraction detected at >= 3 sigma, the TRAPPIST-1e detectability anchors by transit
count, and the retrieval's CPU time per spectrum (run with OMP_NUM_THREADS=1 so that it is one
core's).
Results go to docs/measurements/retrieval.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TRANSIT_GROUPS = ((1, 5), (6, 15), (16, 50))  # inclusive ranges of n_transits
GASES_HELA = {"CO2": "log10_co2", "CH4": "log10_ch4", "O2": "log10_o2", "H2O": "log10_h2o"}
LOG10_FLOOR = -12.0


def simulate(n: int, seed: int):
    from astrobio.world import simulate, survey

    design = survey.survey_design(survey.DEFAULT_SURVEY)
    abiotic = survey.sample_abiotic_population(n, seed, design)
    return simulate.simulate_population_runs(abiotic, seed), design.spectrum_config()


def true_log10(run, gas: str) -> float:
    x = float(run.truth.composition.get(gas, 0.0))
    if gas == "H2O":  # the spectrum's H2O is the climate's column value, which the label holds
        return float(run.labels["log10_h2o"])
    return max(math.log10(x), LOG10_FLOOR) if x > 0 else LOG10_FLOOR


def retrieve_all(runs, spectrum_config):
    from astrobio.world.retrieval import retrieve

    results, seconds = [], []
    for run in runs:
        o = run.observed
        t0 = time.process_time()  # CPU time of this single-threaded process: one core, even on a busy machine
        results.append(retrieve(run.spectrum, planet_radius_earth=o.planet_radius_earth,
                                planet_mass_earth=o.planet_mass_earth, star_radius_rsun=o.star_radius_rsun,
                                temperature_guess_k=o.equilibrium_temperature_k, spectrum_config=spectrum_config))
        seconds.append(time.process_time() - t0)
    return results, seconds


ANCHOR_TRANSITS = (1, 2, 3, 5, 10, 20, 30, 50, 100, 200)


def trappist1e_anchor(seeds=range(5)) -> dict:
    """Median detection significance by transit count for the literature anchors on a TRAPPIST-1e-like
    planet (0.92 R_earth, 0.69 M_earth, 230 K limb; 0.119 R_sun, 2600 K M8 dwarf at 12 pc, J = 11.4):
    CH4 of an Archean-like methanogenic 1 bar atmosphere (Krissansen-Totton et al. 2018) and O3 of
    modern Earth (Lustig-Yaeger et al. 2019; Lin et al. 2021)."""
    from astrobio.world.atmosphere import ozone_from_o2
    from astrobio.world.retrieval import retrieve
    from astrobio.world.spectrum import simulate_spectrum

    planet = dict(radius_earth=0.92, mass_earth=0.69, star_radius_rsun=0.119, temperature_k=230.0,
                  surface_pressure_bar=1.0)
    cases = {"CH4_archean": ({"CO2": 1e-2, "CH4": 1e-3, "H2O": 3e-4}, "CH4"),
             "O3_modern_earth": ({"CO2": 4e-4, "CH4": 1.8e-6, "H2O": 3e-4, "O2": 0.21,
                                  "O3": float(ozone_from_o2(0.21))}, "O3")}
    out = {}
    for name, (comp, gas) in cases.items():
        med, sd = [], []
        for n in ANCHOR_TRANSITS:
            res = [retrieve(simulate_spectrum(composition=comp, star_jmag=11.4, cloud_top_pressure_bar=None,
                                              n_transits=n, rng=np.random.default_rng(s), star_teff_k=2600.0,
                                              **planet),
                            planet_radius_earth=0.92, planet_mass_earth=0.69, star_radius_rsun=0.119,
                            temperature_guess_k=230.0) for s in seeds]
            med.append(float(np.median([r.detection_sigma[gas] for r in res])))
            sd.append(float(np.median([r.sigma[f"log10_{gas.lower()}"] for r in res])))
        first = {f"{t}sigma": next((n for n, m in zip(ANCHOR_TRANSITS, med) if m >= t), None) for t in (3, 5)}
        out[name] = {"n_transits": list(ANCHOR_TRANSITS), "median_sigma": med, "median_sd_dex": sd,
                     "first_n_transits_at": first}
    return out


def scores(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import mean_squared_error, r2_score

    if truth.size < 2:
        return {"r2": float("nan"), "rmse_dex": float("nan")}
    return {"r2": float(r2_score(truth, pred)), "rmse_dex": float(math.sqrt(mean_squared_error(truth, pred)))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-train", type=int, default=1200)
    ap.add_argument("--n-test", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "measurements" / "retrieval.json")
    args = ap.parse_args()

    from astrobio.evaluation.baselines import HELA_TARGETS, HelaRetrieval
    from astrobio.evaluation.features import table_from_runs
    from astrobio.world.retrieval import RETRIEVED_GASES

    t0 = time.perf_counter()
    train, _ = simulate(args.n_train, args.seed)
    test_all, spectrum_config = simulate(args.n_test, args.seed + 1)
    test = [r for r in test_all if r.spectrum is not None]
    t_sim = time.perf_counter() - t0
    hela = HelaRetrieval(seed=args.seed).fit(table_from_runs(train))
    hela_pred = hela.predict(table_from_runs(test))  # (N, 4) in HELA_TARGETS order
    results, seconds = retrieve_all(test, spectrum_config)

    n_transits = np.array([r.truth.n_transits for r in test])
    report = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared, busy)",
              "n_train_runs": len(train), "n_test_spectra": len(test), "seed": args.seed,
              "simulate_seconds": round(t_sim, 1),
              "retrieval_cpu_ms_per_spectrum": {"median": 1e3 * float(np.median(seconds)),
                                            "p90": 1e3 * float(np.percentile(seconds, 90))},
              "groups": []}
    for lo, hi in TRANSIT_GROUPS:
        m = (n_transits >= lo) & (n_transits <= hi)
        group = {"n_transits": [lo, hi], "n_spectra": int(m.sum()), "gases": {}}
        for gas in RETRIEVED_GASES:
            key = f"log10_{gas.lower()}"
            truth = np.array([true_log10(r, gas) for r in test])[m]
            sel = [res for res, keep in zip(results, m) if keep]
            est = np.array([res.estimate[key] for res in sel])
            in68 = [a <= t <= b for t, (a, b) in zip(truth, (res.interval_68[key] for res in sel))]
            in95 = [a <= t <= b for t, (a, b) in zip(truth, (res.interval_95[key] for res in sel))]
            det = np.array([res.detection_sigma[gas] >= 3.0 for res in sel])
            present = truth > -8.0  # a gas with a chance of a feature
            entry = {"retrieval": scores(truth, est), "coverage_68": float(np.mean(in68)) if sel else None,
                     "coverage_95": float(np.mean(in95)) if sel else None,
                     "fraction_detected_3sigma": float(det.mean()) if sel else None,
                     "fraction_present_gt_1e-8": float(present.mean()) if sel else None,
                     "retrieval_where_detected": scores(truth[det], est[det])}
            if gas in GASES_HELA:
                entry["hela_random_forest"] = scores(truth, hela_pred[m, HELA_TARGETS.index(GASES_HELA[gas])])
            group["gases"][gas] = entry
        report["groups"].append(group)

    report["trappist1e_anchor"] = trappist1e_anchor()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    with open(tmp, "w") as f:  # atomic: temp, fsync, rename
        json.dump(report, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, args.out)
    print(f"{len(train)} training runs, {len(test)} test spectra; retrieval median "
          f"{report['retrieval_cpu_ms_per_spectrum']['median']:.1f} ms/spectrum")
    for g in report["groups"]:
        print(f"n_transits {g['n_transits'][0]}-{g['n_transits'][1]} ({g['n_spectra']} spectra)")
        for gas, e in g["gases"].items():
            h = e.get("hela_random_forest")
            r = e["retrieval"]
            print(f"  {gas:>4}: retrieval R2 {r['r2']:6.2f} RMSE {r['rmse_dex']:5.2f} dex | cover68 "
                  f"{e['coverage_68']:.2f} cover95 {e['coverage_95']:.2f} det3 {e['fraction_detected_3sigma']:.2f}"
                  + (f" | HELA R2 {h['r2']:6.2f} RMSE {h['rmse_dex']:5.2f}" if h else ""))
    for name, a in report["trappist1e_anchor"].items():
        first = a["first_n_transits_at"]
        print(f"TRAPPIST-1e {name}: median sigma "
              + ", ".join(f"{n}:{m:.1f}" for n, m in zip(a["n_transits"], a["median_sigma"]))
              + f"; first >= 3 / 5 sigma at {first['3sigma']} / {first['5sigma']} transits")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""The ceiling the world allows (issue 10): a Bayes observer who knows the true planet but not whether life arose.

    .venv/bin/python benchmarks/ceiling.py --store DIR [--test-from-systems 10000] [--n-test 3000] [--draws 64]
        [--seed 0] [--out docs/measurements/ceiling.json] [MEMBER.npz ...]

For each test run of a synthetic store (the test set of `benchmarks/quality.py`, chosen by the same code) the
observer here is given every parameter of the *abiotic* planet the survey drew (`survey.sample_abiotic_population`,
regenerated from the store's simulate summary: star, orbit, mass, radius, albedo, clouds, the atmosphere before
life) and the stored noisy spectrum, and nothing else. It computes the posterior of the three classes by Bayes'
rule over the world's own hypotheses (`world/survey.py` `assign_biospheres`):
- H0, no life: the abiotic atmosphere and its true climate (`simulate.true_climate`);
- H1, life: where the planet can host life (`labels.is_habitable` on that climate) and a metabolism is viable
  (`metabolism.viable_biospheres`), prior `survey.P_LIFE_IF_VIABLE`, each viable biosphere equally likely, and
  `--draws` Monte-Carlo atmospheres per biosphere from `atmosphere.apply_biosphere`, each with its own climate
  re-run (methane warms), as the world re-runs it.
Each hypothesis' class comes from the habitability of its own climate (an inhabited planet whose methane tips it
out of the liquid-water range is class 0, as in the world). Three likelihoods of the stored spectrum (VARIANTS):
- exact: the world's noise model (`spectrum.add_instrument_noise`: independent Gaussian bins with the stored
  sigma) about the hypothesis' noise-free depth (`spectrum.transmission_depth_ppm`, with the climate's water
  vapour and temperature as `simulate._chunk_runs` sets them); H1's is the mean over its draws;
- shape_only: the same with the depth's offset and amplitude fitted per hypothesis (`shape_log_likelihoods`), so
  only the spectrum's shape counts, not the level and scale height that hang on a reference radius, temperature,
  gravity and mean molecular weight no observer knows to the precision the exact likelihood uses;
- no_spectrum: the prior from the planet alone.

Why it is a ceiling: every modality the observer has is a function of the abiotic planet, the spectrum and noise
that does not depend on life (`observation.observe` and `observing_log.log_facts` read no atmosphere or life;
the datacube and the graph are computed from the observed values and the spectrum's reading). So the exact
posterior carries at least as much information as any model's inputs: its expected log-loss, and its ROC at every
threshold (Neyman-Pearson), bound every model's. The figures to read are the life question's: `life_log_loss`
(the binary log-loss among truly habitable planets, probabilities renormalised over classes 1 and 2) and
`auroc_inhabited`. The habitability question is not bounded usefully (this observer knows the climate), and argmax
macro-F1 is not a bound at all (argmax maximises accuracy, not macro-F1; without a spectrum the prior calls every
viable planet inhabited). The shape-only and no-spectrum rows are not bounds; they say where the exact one's
information lies.

MEMBER.npz: models `benchmarks/quality.py --members K --member k` kept on the same test set, scored as their rows
were (the temperature of their validation slice) with the same life-question log-loss, so the gap to the ceiling
is read per planet set and stratum.

Checks written beside the rows: the regenerated world reproduces every test run (stored biosphere, class and gas
labels from the regenerated truth), and the true planet's chi-square per spectral bin (near 1 when the noise
model and the noise-free depth are the world's). `--draws` is checked by scoring the first quarter, half and all
of the draws (their rows' `draws` field).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

# benchmarks/quality.py: the same test set, the same scores
from quality import choose_test, scores

CLIMATE_CHUNK = 512  # planets per vectorised climate call (each planet's climate is independent of its batch)
DEPTH_CHUNK = 1024  # hypotheses per vectorised depth call ([P, 2000] float64 work arrays)
# the spectrum's likelihood: the world's noise model about each hypothesis' depth, the same with the depth's offset
# and amplitude fitted (`shape_log_likelihoods`), or none (the prior from the planet alone)
VARIANTS = ("exact", "shape_only", "no_spectrum")
METHOD = "bayes_knowing_the_planet"


# ------------------------------------------------------------------------------------------ the world's pieces

def climate_summary(truths, grid) -> dict[str, np.ndarray]:
    """What a hypothesis needs of its true climate (`simulate.true_climate`, in chunks): liquid-water fraction,
    runaway, global mean and limb temperature, column water vapour, each [P]. A full ClimateResult also holds the
    datacube (~60 kB a planet), too much for 10^5 hypotheses."""
    from astrobio.world import simulate

    keys = ("liquid_water_fraction", "runaway", "global_mean_surface_temperature_k", "column_h2o_vmr")
    parts: dict[str, list] = {k: [] for k in (*keys, "limb_temperature_k")}
    for s in range(0, len(truths), CLIMATE_CHUNK):
        res = simulate.true_climate(truths[s:s + CLIMATE_CHUNK], grid)
        for k in keys:
            parts[k].append(np.asarray(getattr(res, k)))
        # the spectrum's isothermal temperature, as simulate._chunk_runs takes it
        parts["limb_temperature_k"].append(np.array([simulate._atmosphere_temperature(res, i)
                                                     for i in range(len(res.runaway))]))
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}


def habitable(truth, clim: dict, i: int) -> bool:
    """`labels.is_habitable` of `truth` under row i of a climate summary."""
    from astrobio.world import labels

    return labels.is_habitable(float(clim["liquid_water_fraction"][i]), bool(clim["runaway"][i]),
                               truth.atmosphere_retained, truth.surface_pressure_bar)


def viable_kinds(truth, clim: dict, i: int) -> list[str]:
    """The biospheres a metabolism allows on the abiotic planet, sorted as `assign_biospheres` chooses among them
    (it asks only where the abiotic climate can host life)."""
    from astrobio.world import survey

    if not habitable(truth, clim, i):
        return []
    return sorted(survey.viable_biospheres(truth, float(clim["global_mean_surface_temperature_k"][i])))


def hypothesis_class(truth, clim: dict, i: int) -> int:
    """The label a hypothesis gives: `labels.habitability_class` of its biosphere under its own climate."""
    from astrobio.world import labels

    return labels.habitability_class(habitable(truth, clim, i), truth.biosphere)


def noise_free_depths(truths, clim: dict, rows, config) -> np.ndarray:
    """[P, W] noise-free depth of each truth under row rows[k] of a climate summary, as `spectrum.spectrum_from_truth`
    (rng None) models it after `simulate._chunk_runs` has added the climate's water vapour."""
    from astrobio.world import simulate, spectrum

    rows = np.asarray(rows)
    comps = [simulate.with_water_vapour(t.composition, float(clim["column_h2o_vmr"][r])) for t, r in zip(truths, rows)]
    return spectrum.transmission_depth_ppm(
        radius_earth=np.array([t.planet_radius_earth for t in truths]),
        mass_earth=np.array([t.planet_mass_earth for t in truths]),
        star_radius_rsun=np.array([t.star_radius_rsun for t in truths]),
        temperature_k=clim["limb_temperature_k"][rows],
        surface_pressure_bar=np.array([t.surface_pressure_bar if t.atmosphere_retained else 0.0 for t in truths]),
        composition=comps, cloud_top_pressure_bar=np.array([t.cloud_top_pressure_bar for t in truths]),
        config=config)


def log_likelihoods(depths: np.ndarray, observed: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """[H] Gaussian log-likelihood (up to a constant shared by every hypothesis of a planet) of each observed
    spectrum [H, W] given the noise-free depths [H, W] and the per-bin sigma [H, W]."""
    return -0.5 * np.sum(((observed - depths) / sigma) ** 2, axis=1)


def shape_log_likelihoods(depths: np.ndarray, observed: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """[H] profile log-likelihood when each hypothesis' depth is known only up to an offset and a non-negative
    amplitude: observed ≈ a + b·depth, (a, b ≥ 0) fitted by weighted least squares per hypothesis. What is left is
    the spectrum's shape (which bands, in which ratios), not its level or its scale height, which hang on the
    reference radius, temperature, gravity and mean molecular weight an observer knows only roughly."""
    w = sigma ** -2.0
    total = w.sum(axis=1, keepdims=True)
    d = observed - (w * observed).sum(axis=1, keepdims=True) / total  # weighted-centred: the offset fitted
    m = depths - (w * depths).sum(axis=1, keepdims=True) / total
    mm, md = (w * m * m).sum(axis=1), (w * m * d).sum(axis=1)
    explained = np.where((md > 0) & (mm > 0), md ** 2 / np.where(mm > 0, mm, 1.0), 0.0)  # b = md / mm, kept >= 0
    return -0.5 * ((w * d * d).sum(axis=1) - explained)


def class_posterior(owner: np.ndarray, log_weight: np.ndarray, klass: np.ndarray, loglik: np.ndarray,
                    n_planets: int) -> np.ndarray:
    """[N, 3] posterior of the classes: p(c | planet n) ∝ Σ over n's hypotheses of class c of weight × likelihood.

    owner [H] (the planet each hypothesis belongs to), log_weight [H] (log prior; a planet's weights sum to 1),
    klass [H] (0, 1, 2), loglik [H]."""
    score = log_weight + loglik
    peak = np.full(n_planets, -np.inf)
    np.maximum.at(peak, owner, score)
    mass = np.exp(score - peak[owner])
    post = np.zeros((n_planets, 3))
    np.add.at(post, (owner, klass), mass)
    return post / post.sum(axis=1, keepdims=True)


# ------------------------------------------------------------------------------------------ the hypotheses

def build_hypotheses(abiotic, base: dict, draws: int, rng: np.random.Generator):
    """(truths [H], owner [H], log prior [H], draw [H]): H0, the abiotic planet, for every planet (draw -1), and
    `draws` atmospheres per viable biosphere for the planets that can host life (draw 0 .. draws-1). A planet's
    prior weights sum to 1."""
    from astrobio.world import atmosphere, survey

    truths, owner, log_w, draw = [], [], [], []
    for i, t in enumerate(abiotic):
        kinds = viable_kinds(t, base, i)
        p_life = survey.P_LIFE_IF_VIABLE if kinds else 0.0
        truths.append(t), owner.append(i), log_w.append(np.log1p(-p_life)), draw.append(-1)
        for kind in kinds:
            for k in range(draws):
                truths.append(replace(t, biosphere=kind, composition=atmosphere.apply_biosphere(t.composition, kind, rng)))
                owner.append(i), log_w.append(np.log(p_life / (len(kinds) * draws))), draw.append(k)
    return truths, np.array(owner), np.array(log_w), np.array(draw)


def subsample_weights(log_w: np.ndarray, draw: np.ndarray, keep: int, draws: int) -> tuple[np.ndarray, np.ndarray]:
    """(mask of the hypotheses kept, their log prior) when only the first `keep` of `draws` draws are used: the
    kept draws share the weight of all."""
    mask = draw < keep
    return mask, np.where(draw >= 0, log_w + np.log(draws / keep), log_w)[mask]


def world_checks(runs, abiotic, base: dict, world_seed: int, grid, config) -> dict:
    """Does the regenerated world give the stored runs? Biospheres, classes and gas labels from the regenerated
    truths (`assign_biospheres` on the abiotic climate), and the chi-square per bin of each stored spectrum about
    the regenerated true planet's noise-free depth."""
    from astrobio.world import survey

    full = dict(base)
    world = survey.assign_biospheres(abiotic, _ClimateView(base), world_seed)
    changed = [i for i, (a, t) in enumerate(zip(abiotic, world)) if a is not t]
    if changed:
        redo = climate_summary([world[i] for i in changed], grid)
        for k in full:
            full[k] = full[k].copy()
            full[k][changed] = redo[k]
    y = np.array([r.labels["habitability_class"] for r in runs])
    classes = np.array([hypothesis_class(t, full, i) for i, t in enumerate(world)])
    gas = max(abs(np.log10(max(t.composition[g], 1e-12)) - r.labels[f"log10_{g.lower()}"])
              for t, r in zip(world, runs) for g in ("CO2", "CH4", "O2"))
    with_spec = [i for i, r in enumerate(runs) if r.spectrum is not None]
    depth = noise_free_depths([world[i] for i in with_spec], full, with_spec, config)
    spec = np.stack([runs[i].spectrum for i in with_spec]).astype(np.float64)
    chi2 = np.mean(((spec[:, :, 1] - depth) / spec[:, :, 2]) ** 2, axis=1)
    return {"runs": len(runs), "biospheres_reproduced": sum(t.biosphere == r.truth.biosphere for t, r in zip(world, runs)),
            "classes_reproduced": int((classes == y).sum()), "inhabited": len(changed),
            "largest_log10_gas_difference": float(gas),
            "true_planet_chi2_per_bin": {"median": float(np.median(chi2)), "p05": float(np.percentile(chi2, 5)),
                                         "p95": float(np.percentile(chi2, 95))}}


class _ClimateView:
    """The attributes of a ClimateResult that `survey.assign_biospheres` reads, from a climate summary."""

    def __init__(self, summary: dict):
        self.liquid_water_fraction = summary["liquid_water_fraction"]
        self.runaway = summary["runaway"]
        self.global_mean_surface_temperature_k = summary["global_mean_surface_temperature_k"]


def posteriors(runs, abiotic, base: dict, draws: int, seed: int, grid, config, log=print) -> tuple[dict, int]:
    """({draws kept: {variant: posterior [N, 3]}} for a quarter, half and all of the draws, number of hypotheses)
    of the observer who knows each run's abiotic planet (`abiotic[n]`, its climate summary `base`). The VARIANTS
    differ only in the likelihood of the spectrum."""
    truths, owner, log_w, draw = build_hypotheses(abiotic, base, draws, np.random.default_rng(seed))
    life = np.flatnonzero(draw >= 0)
    log(f"{len(truths)} hypotheses ({len(life)} with life)")
    clim = {k: np.concatenate([v, w]) for (k, v), w in
            zip(base.items(), climate_summary([truths[h] for h in life], grid).values())}
    rows = owner.copy()  # each hypothesis' climate row: the abiotic planet's for H0 ...
    rows[life] = len(abiotic) + np.arange(len(life))  # ... its own re-run for H1
    klass = np.array([hypothesis_class(t, clim, r) for t, r in zip(truths, rows)])
    log("climates of the hypotheses with life done")

    observed = {i: r.spectrum.astype(np.float64) for i, r in enumerate(runs) if r.spectrum is not None}
    # no spectrum: every hypothesis of the planet equally likely
    loglik = {v: np.zeros(len(truths)) for v in VARIANTS if v != "no_spectrum"}
    spectral = np.flatnonzero([o in observed for o in owner])
    for s in range(0, len(spectral), DEPTH_CHUNK):
        hs = spectral[s:s + DEPTH_CHUNK]
        spec = np.stack([observed[o] for o in owner[hs]])  # [H, W, 3]
        depth = noise_free_depths([truths[h] for h in hs], clim, rows[hs], config)
        loglik["exact"][hs] = log_likelihoods(depth, spec[:, :, 1], spec[:, :, 2])
        loglik["shape_only"][hs] = shape_log_likelihoods(depth, spec[:, :, 1], spec[:, :, 2])
    loglik["no_spectrum"] = np.zeros(len(truths))
    out = {}
    for keep in sorted({max(draws // 4, 1), draws // 2, draws}):
        mask, lw = subsample_weights(log_w, draw, keep, draws)
        out[keep] = {v: class_posterior(owner[mask], lw, klass[mask], loglik[v][mask], len(runs)) for v in VARIANTS}
    return out, len(truths)


# ------------------------------------------------------------------------------------------ scores

def life_log_loss(y: np.ndarray, probs: np.ndarray) -> float:
    """Binary log-loss of the life question alone: among the truly habitable planets (class 1 or 2),
    -mean log p(their class | habitable), p renormalised over classes 1 and 2 (`metrics.reveal_answer`'s rule).
    A Bayes posterior given more information has the lower expectation: this bound is strict, argmax
    macro-F1 is not."""
    keep = y >= 1
    if not keep.any():
        return float("nan")
    p = np.clip(probs[keep][:, 1:], 1e-12, None)
    p = p / p.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(p[np.arange(keep.sum()), y[keep] - 1])))


def scored(y: np.ndarray, probs: np.ndarray, n_transits: np.ndarray) -> dict:
    """`quality.scores` with the life question's log-loss, overall and per transit stratum."""
    from astrobio import metrics as M

    row = scores(y, probs, n_transits)
    row["life_log_loss"] = life_log_loss(y, probs)
    strata = np.array([M.transit_stratum(int(k)) for k in n_transits])
    for s, r in row["strata"].items():
        r["life_log_loss"] = life_log_loss(y[strata == s], probs[strata == s])
    return row


def member_row(path: Path, y: np.ndarray, n_transits: np.ndarray) -> dict:
    """A model kept by quality.py, scored as its row was (the temperature fitted on its validation slice), with the
    life-question log-loss; SystemExit if its test set is not this one."""
    from astrobio import metrics as M
    from decision_threshold import MEMBER_NAME

    name = MEMBER_NAME.fullmatch(path.name)
    if name is None:
        raise SystemExit(f"{path}: not a member file quality.py names METHOD-nN-seedS-memberK.npz")
    with np.load(path) as saved:
        probs_val, y_val, probs_test = saved["probs_val"], saved["y_val"], saved["probs_test"]
        kept = json.loads(str(saved["row"]))
    if len(probs_test) != len(y):
        raise SystemExit(f"{path}: {len(probs_test)} test probabilities, this test set has {len(y)}")
    logit = np.log(np.clip(probs_val, 1e-12, None))
    probs = M.softmax(np.log(np.clip(probs_test, 1e-12, None)), M.fit_temperature(logit, y_val))
    row = {"method": name["method"], "n_train": int(name["n"]), "seed": int(name["seed"]),
           "member_seed": kept["member_seed"], "member_file": path.name, **scored(y, probs, n_transits)}
    if abs(row["macro_f1"] - kept["macro_f1"]) > 1e-9:
        raise SystemExit(f"{path}: macro-F1 {row['macro_f1']:.6f} here, {kept['macro_f1']:.6f} in its row "
                         "(another test set or store?)")
    return row


def summarise(rows: list[dict]) -> list[dict]:
    """Medians (and ranges) of the headline scores per method and training size (models: over their members and
    seeds; the ceiling: per draw count), overall and per transit stratum."""
    import statistics

    keys = ("macro_f1", "log_loss", "life_log_loss", "auroc_inhabited", "macro_f1_habitable_revealed")
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["method"], r.get("n_train"), r.get("draws")), []).append(r)

    def stats(rs: list[dict]) -> dict:
        return {k: {"median": statistics.median(r[k] for r in rs), "min": min(r[k] for r in rs),
                    "max": max(r[k] for r in rs)} for k in keys}
    return [{"method": m, "n_train": n, "draws": d, "rows": len(rs), **stats(rs),
             "strata": {s: stats([r["strata"][s] for r in rs]) for s in rs[0]["strata"]}}
            for (m, n, d), rs in groups.items()]


def _line(r: dict) -> str:
    who = f"{r['method']}, {r['draws']} draws" if "draws" in r else f"{r['member_file']}"
    return (f"{who}: macro-F1 {r['macro_f1']:.3f}, log-loss {r['log_loss']:.3f}, life question: log-loss "
            f"{r['life_log_loss']:.3f}, AUROC {r['auroc_inhabited']:.3f}, macro-F1 (habitability revealed) "
            f"{r['macro_f1_habitable_revealed']:.3f}")


# ------------------------------------------------------------------------------------------ main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--n-test", type=int, default=3000)
    ap.add_argument("--test-from-systems", type=int, default=0)
    ap.add_argument("--draws", type=int, default=64, help="Monte-Carlo atmospheres per viable biosphere")
    ap.add_argument("--seed", type=int, default=0, help="seeds the Monte-Carlo atmospheres")
    ap.add_argument("--limit", type=int, default=0, help="only the first N test runs (0: all; for a quick look)")
    ap.add_argument("--out", type=Path, default=Path("docs/measurements/ceiling.json"))
    ap.add_argument("--teacher-out", type=Path, default=None,
                    help="instead: the exact posterior [N, 3] of every run outside the test set (the training "
                         "pool), written as an .npz of run_ids and probs (soft targets, see quality.py --teacher)")
    ap.add_argument("--shard", default="0/1", help="with --teacher-out: K/N, this process's share of the pool")
    ap.add_argument("--chunk", type=int, default=1500, help="with --teacher-out: runs per posterior call")
    ap.add_argument("members", type=Path, nargs="*",
                    help="member .npz files benchmarks/quality.py kept (--work/members) on the same test set: "
                         "scored beside the ceiling, with the same life-question log-loss")
    args = ap.parse_args()
    if args.draws < 4:
        raise SystemExit(f"--draws: {args.draws}, expected 4 or more (a quarter of them is scored too)")

    from astrobio.data import RealDataStorage
    from astrobio.io import git_revision, write_json
    from astrobio.world import simulate, survey

    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f} s] {msg}", flush=True)

    summary = json.loads((args.store / "simulate_summary_synthetic.json").read_text())
    storage = RealDataStorage(args.store)
    index = storage.index_columns(("run_id", "system"))
    test_ids, fractions = choose_test(dict(zip(index["run_id"], index["system"])), args.test_from_systems, args.n_test)
    test_ids = sorted(test_ids)
    design = survey.survey_design(summary["survey"])
    config, grid = design.spectrum_config(), simulate.grid_for(summary["resolution"])
    drawn = {t.name: t for t in survey.sample_abiotic_population(summary["runs"], summary["seed"], design)}
    if args.teacher_out is not None:
        return teacher(args, storage, drawn, grid, config, sorted(set(index["run_id"]) - set(test_ids)), log)
    sha = hashlib.sha256("\n".join(test_ids).encode()).hexdigest()
    runs = [storage.load_run(r) for r in (test_ids[:args.limit] if args.limit else test_ids)]
    log(f"{len(runs)} test runs (test set sha256 {sha[:7]})")

    abiotic = [drawn[r.truth.name] for r in runs]
    base = climate_summary(abiotic, grid)
    checks = world_checks(runs, abiotic, base, summary["seed"], grid, config)
    log(f"world reproduced: {checks}")

    y = np.array([r.labels["habitability_class"] for r in runs])
    n_transits = np.array([r.truth.n_transits for r in runs])
    post, n_hyp = posteriors(runs, abiotic, base, args.draws, args.seed, grid, config, log)
    rows = []
    for keep, by_variant in post.items():
        for variant, probs in by_variant.items():
            rows.append({"method": METHOD if variant == "exact" else f"{METHOD}_{variant}", "draws": keep,
                         **scored(y, probs, n_transits)})
            log(_line(rows[-1]))
    for path in args.members:
        rows.append(member_row(path, y, n_transits))
        log(_line(rows[-1]))
    write_json(args.out, {
        "what": "the Bayes posterior given the abiotic planet's true parameters and the stored spectrum "
                "(benchmarks/ceiling.py docstring)",
        "machine": f"{platform.node()} ({platform.processor() or platform.machine()})",
        "git_revision": git_revision(), "store": str(args.store.resolve()), "test_runs": len(runs),
        "test_set_sha256": sha, "limit": args.limit or None, "split_fractions": fractions,
        "world": {k: summary[k] for k in ("runs", "seed", "survey", "resolution")}, "mc_seed": args.seed,
        "draws": args.draws, "hypotheses": n_hyp, "checks": checks, "seconds": round(time.perf_counter() - t0, 1),
        "summary": summarise(rows), "rows": rows})
    log(f"wrote {args.out}")


def teacher(args, storage, drawn: dict, grid, config, pool: list[str], log) -> None:
    """The exact posterior of this shard's pool runs (`--teacher-out`): what a training target distilled from
    the observer who knows the planet would be (privileged information, used as a label, never as an input)."""
    from astrobio.io import atomic_path

    k, n = (int(x) for x in args.shard.split("/"))
    mine = pool[k::n]
    ids, probs, agree = [], [], 0
    for c in range(0, len(mine), args.chunk):
        runs = [storage.load_run(r) for r in mine[c:c + args.chunk]]
        abiotic = [drawn[r.truth.name] for r in runs]
        base = climate_summary(abiotic, grid)
        post, _ = posteriors(runs, abiotic, base, args.draws, args.seed + 1000 * k + c, grid, config, lambda m: None)
        p = post[args.draws]["exact"]
        y = np.array([r.labels["habitability_class"] for r in runs])
        agree += int(((p[:, 0] > 0.5) == (y == 0)).sum())
        ids += [r.run_id for r in runs]
        probs.append(p)
        log(f"shard {k}/{n}: {len(ids)} of {len(mine)} runs; habitability agrees with the label on {agree}")
    with atomic_path(args.teacher_out) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, run_ids=np.array(ids), probs=np.concatenate(probs))
    log(f"wrote {args.teacher_out}")


if __name__ == "__main__":
    main()

"""`astrobio predict`: class probabilities with uncertainty and per-modality weights for real planets.

Inputs are built exactly as for training, by the world simulator, from the planet's catalog values
(or the Solar System planet's true values), and served in memory (`PlanetRunDataset.from_runs`) with the
normalisation statistics and tokenizer saved in the checkpoint; uncertainty is the spread over MC-dropout
passes. `--catalog FILE` reads a user CSV with the shipped catalog's columns: a missing required column
is an error naming it, a row that cannot be parsed or modelled is skipped with its reason.
"""

from __future__ import annotations

import csv
from pathlib import Path

from astrobio.data import PlanetRunDataset
from astrobio.errors import InputValidationError
from astrobio import metrics as M
from astrobio.evaluation.inference import LoadedRun, load_trained, predict_dataset
from astrobio.io import atomic_write
from astrobio.world import catalog, simulate_runs
from astrobio.world.types import CLASS_NAMES, MODALITIES

MC_SAMPLES = 20
SOLAR_SYSTEM = ("Venus", "Earth", "Mars")


def truth_for(name: str):
    """A planet's truth by name: Venus/Earth/Mars, else a row of the shipped catalog."""
    if name.strip().capitalize() in SOLAR_SYSTEM:
        return catalog.solar_system_planet(name)
    rows = [r for r in catalog.catalog_rows() if r["name"].lower() == name.strip().lower()]
    if not rows:
        raise InputValidationError("planet", name, "Venus, Earth, Mars or a planet name of the shipped catalog "
                                   "(e.g. 'TRAPPIST-1 e')")
    return catalog.catalog_truth_from_row(rows[0])  # raises with the reason if it cannot be modelled


def predict_truths(loaded: LoadedRun, truths, seed: int = 0, mc_samples: int = MC_SAMPLES,
                   temperature: float = 1.0) -> list[dict]:
    """Simulate inputs for `truths` (at the training data's resolution), run the model; one dict per planet,
    in the order of `truths`."""
    runs = simulate_runs(truths, seed=seed, resolution=loaded.data_state["resolution"])
    return predict_runs(loaded, runs, mc_samples=mc_samples, temperature=temperature, seed=seed)


def predict_runs(loaded: LoadedRun, runs, mc_samples: int = MC_SAMPLES, temperature: float = 1.0,
                 seed: int = 0) -> list[dict]:
    """The model on simulated runs, served in memory with the checkpoint's data state; one dict per run.
    The MC-dropout masks are drawn from `seed` (see `predict_dataset`): same runs, same seed, same rows."""
    ds = PlanetRunDataset.from_runs(runs, like=loaded.data_state)  # in memory, in the order of `runs`
    res = predict_dataset(loaded.model, ds, mc_samples=mc_samples, seed=seed)
    probs = M.softmax(res["logits"], temperature)
    rows = []
    for i, run in enumerate(runs):
        o = run.observed
        row = {"name": run.truth.name, "system": run.system, "source": run.truth.source,
               "predicted_class": M.CLASS_NAMES[int(probs[i].argmax())]}
        for c, cname in enumerate(f"p_{name}" for name in CLASS_NAMES):
            row[cname] = float(probs[i, c])
            row[cname + "_std"] = float(res["prob_std"][i, c]) if mc_samples else float("nan")
        row.update({f"w_{m}": float(res["modality_weights"][i, j]) for j, m in enumerate(MODALITIES)})
        row.update({"star_teff_k": o.star_teff_k, "instellation_searth": o.instellation_searth,
                    "semimajor_axis_au": o.semimajor_axis_au, "planet_radius_earth": o.planet_radius_earth,
                    "has_spectrum": run.spectrum is not None,
                    "simulated_label_if_prior_atmosphere": M.CLASS_NAMES[int(run.labels["habitability_class"])]})
        rows.append(row)
    return rows


def simulate_isolating(truths, seed: int, resolution: str) -> tuple[list, list[tuple[str, str]]]:
    """Simulate `truths` in one vectorised call; if a planet makes it fail, bisect, so only the failing
    planets are skipped, with their reasons, at the cost of O(failures x log n) more calls (a run depends
    only on its truth and the seed, so the others' values do not change). Returns (runs, [(name, reason)])."""
    if not truths:
        return [], []
    try:
        return simulate_runs(truths, seed=seed, resolution=resolution), []
    except Exception as exc:  # any planet's failure is reported per planet, never aborting the file
        if len(truths) == 1:
            return [], [(truths[0].name, f"simulation failed: {type(exc).__name__}: {exc}")]
    half = len(truths) // 2
    first, second = simulate_isolating(truths[:half], seed, resolution), simulate_isolating(truths[half:], seed,
                                                                                          resolution)
    return first[0] + second[0], first[1] + second[1]


def temperature_of(run_dir: Path) -> float:
    """The temperature fitted by `astrobio evaluate` (1.0 before evaluation)."""
    import json

    path = Path(run_dir) / "metrics.json"
    return float(json.loads(path.read_text())["model"]["temperature"]) if path.exists() else 1.0


def predict_catalog(run_dir: Path, out: Path | None = None, seed: int = 0, chunk: int = 256,
                    progress: bool = True, limit: int = 0, mc_samples: int = MC_SAMPLES,
                    catalog_file: Path | None = None) -> tuple[list[dict], list[tuple[str, str]]]:
    """Every modelled planet of the shipped catalog (or of `catalog_file`, a CSV with its columns);
    also returns the skipped planets with reasons."""
    from rich.progress import Progress


    loaded = load_trained(run_dir)
    temperature = temperature_of(run_dir)
    truths, skipped = catalog.catalog_planets(catalog_file)
    truths = truths[:limit] if limit else truths
    rows: list[dict] = []
    with Progress(disable=not progress) as bar:
        task = bar.add_task("predict catalog", total=len(truths))
        for start in range(0, len(truths), chunk):
            part = truths[start:start + chunk]
            runs, failed = simulate_isolating(part, seed, loaded.data_state["resolution"])
            skipped += failed
            rows += predict_runs(loaded, runs, temperature=temperature, mc_samples=mc_samples, seed=seed)
            bar.advance(task, len(part))
    out = Path(out or Path(run_dir) / "predictions.csv")
    write_csv(rows, out)
    return rows, skipped


def write_csv(rows: list[dict], path: Path) -> None:

    with atomic_write(path) as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["name"])
        w.writeheader()
        w.writerows(rows)


def print_prediction(row: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{row['name']} ({row['system']})")
    t.add_column("class")
    t.add_column("probability", justify="right")
    for name in CLASS_NAMES:
        t.add_row(name.replace("_", " "), f"{row['p_' + name]:.3f} ± {row['p_' + name + '_std']:.3f}")
    t.add_row("[dim]modality weights", " ".join(f"{m}={row['w_' + m]:.2f}" for m in MODALITIES))
    Console().print(t)


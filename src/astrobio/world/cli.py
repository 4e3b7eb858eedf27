"""`astrobio simulate`: planet runs into an HDF5 + SQLite store, resumable, in parallel."""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from collections import Counter
from enum import Enum
from pathlib import Path

import typer


class Source(str, Enum):
    synthetic = "synthetic"
    catalog = "catalog"


class Resolution(str, Enum):
    demo = "demo"
    seed = "seed"


def _simulate_chunk(args):
    """Worker: assign biospheres (synthetic only) and simulate one chunk of true planets."""
    truths, seed, resolution, synthetic = args
    from astrobio.world import simulate

    if synthetic:
        return simulate.simulate_population_runs(truths, seed=seed, resolution=resolution)
    return simulate.simulate_runs(truths, seed=seed, resolution=resolution)


def _pending_chunks(truths, existing: set[str], chunk: int):
    from astrobio.world.simulate import run_id_for

    todo = [t for t in truths if run_id_for(t) not in existing]
    return [todo[i:i + chunk] for i in range(0, len(todo), chunk)]


def store_summary(runs_index: list[dict]) -> dict:
    """Class balance and modality presence of a store's index rows."""
    n = len(runs_index)
    classes = Counter(int(r["habitability_class"]) for r in runs_index)
    mods = {m: sum(1 for r in runs_index if r.get(f"has_{m}", 1)) for m in ("datacube", "graph", "spectrum", "text")}
    return {"runs": n, "class_counts": {c: classes.get(c, 0) for c in (0, 1, 2)},
            "class_fractions": {c: (classes.get(c, 0) / n if n else 0.0) for c in (0, 1, 2)},
            "modalities_present": mods}


def simulate_to_store(out: Path, n: int, seed: int, resolution: str, workers: int, source: str,
                      chunk: int = 64, progress: bool = True) -> dict:
    """Simulate into `out`, skipping runs already stored (a killed run resumes where it stopped)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from astrobio.data import RealDataStorage
    from astrobio.world import population

    console = Console()
    skipped: list[tuple[str, str]] = []
    if source == "catalog":
        truths, skipped = population.catalog_planets()
        truths = truths[:n] if n > 0 else truths
    else:
        truths = population.sample_abiotic_population(n, seed)
    storage = RealDataStorage(out)
    chunks = _pending_chunks(truths, set(storage.existing_run_ids()), chunk)
    pending = sum(len(c) for c in chunks)
    tasks = [(c, seed, resolution, source == "synthetic") for c in chunks]
    config = {"command": "simulate", "n": n, "seed": seed, "resolution": resolution, "source": source}
    t0 = time.perf_counter()
    with Progress(TextColumn("[bold]simulate"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, disable=not progress) as bar:
        task = bar.add_task("runs", total=pending)
        if workers > 1 and len(tasks) > 1:
            from astrobio.world import metabolism

            metabolism.warm_up()  # load the genome-scale models once, before forking: workers share them
            with mp.get_context("fork").Pool(workers) as pool:
                for runs in pool.imap(_simulate_chunk, tasks):
                    storage.write_runs(runs, config=config)
                    bar.advance(task, len(runs))
        else:
            for t in tasks:
                runs = _simulate_chunk(t)
                storage.write_runs(runs, config=config)
                bar.advance(task, len(runs))
    elapsed = time.perf_counter() - t0
    summary = store_summary(storage.list_stored_runs(include_quarantined=True))
    summary.update({"simulated_now": pending, "already_stored": len(truths) - pending, "seconds": elapsed,
                    "runs_per_second": pending / elapsed if elapsed > 0 and pending else 0.0,
                    "resolution": resolution, "seed": seed, "source": source,
                    "skipped": [{"name": nm, "reason": why} for nm, why in skipped]})
    out.mkdir(parents=True, exist_ok=True)
    (out / f"simulate_summary_{source}.json").write_text(json.dumps(summary, indent=2))
    return summary


def print_summary(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    names = ("not habitable", "habitable", "inhabited")
    table = Table(title=f"planet runs ({summary['source']}, {summary['resolution']} resolution)")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("runs in store", str(summary["runs"]))
    table.add_row("simulated now / already stored", f"{summary['simulated_now']} / {summary['already_stored']}")
    for c, name in enumerate(names):
        table.add_row(f"class {c} ({name})",
                      f"{summary['class_counts'][c]} ({100 * summary['class_fractions'][c]:.1f}%)")
    for m, k in summary["modalities_present"].items():
        table.add_row(f"{m} present", f"{k} ({100 * k / max(summary['runs'], 1):.0f}%)")
    table.add_row("throughput", f"{summary['runs_per_second']:.1f} runs/s ({summary['seconds']:.1f} s)")
    if summary["skipped"]:
        table.add_row("catalog planets skipped", f"{len(summary['skipped'])} (reasons in simulate_summary_catalog.json)")
    Console().print(table)


def register(app: typer.Typer) -> None:
    @app.command()
    def simulate(
        n: int = typer.Option(200, "--n", help="number of planets (catalog: 0 = all modelled planets)"),
        out: Path = typer.Option(Path("data/runs"), "--out", help="store directory"),
        seed: int = typer.Option(0, "--seed"),
        resolution: Resolution = typer.Option(Resolution.demo, "--resolution"),
        workers: int = typer.Option(1, "--workers", min=1),
        source: Source = typer.Option(Source.synthetic, "--source"),
    ):
        """Simulate planet runs (synthetic survey or the real catalog) into an HDF5 + SQLite store."""
        summary = simulate_to_store(out, n, seed, resolution.value, workers, source.value)
        print_summary(summary)
        if summary["skipped"]:
            from rich.console import Console

            c = Console()
            c.print(f"[yellow]{len(summary['skipped'])} catalog planets skipped; first reasons:")
            for row in summary["skipped"][:5]:
                c.print(f"  {row['name']}: {row['reason']}")

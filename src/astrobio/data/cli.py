"""`astrobio data ...`: quality control, repair, inspection, export, sources and quarantine restore of a store.

Errors are one line on stderr and exit code 2 (no traceback); `quality --strict` exits 1 when the store
does not meet the thresholds.
"""

from __future__ import annotations

import json
from collections import Counter
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer

data_app = typer.Typer(help="Curate a planet-run store: quality, repair, inspect, export, sources, restore.",
                       no_args_is_help=True)


class ExportFormat(str, Enum):
    netcdf = "netcdf"
    csv = "csv"
    graphml = "graphml"


class ClimateRun(str, Enum):
    true = "true"
    prior = "prior"


def _fail(exc: Exception) -> None:
    # typer.echo, not rich: one unwrapped line whatever the terminal width
    typer.echo(f"error: {type(exc).__name__}: {exc}", err=True)
    raise typer.Exit(code=2)


def _open(directory: Path):
    from astrobio.data.storage import RealDataStorage

    store = RealDataStorage(directory)
    store.read_meta()  # raises StorageError when there is no store here
    return store


def store_summary(store) -> dict[str, Any]:
    """Counts of a store: runs, quarantined, classes, modalities, sources, shards, resolution and grid."""
    rows = store.list_stored_runs(include_quarantined=True)
    ok = [r for r in rows if not r["quarantined"]]
    meta = store.read_meta()
    return {
        "path": str(store.path),
        "runs": len(rows),
        "usable": len(ok),
        "quarantined": len(rows) - len(ok),
        "class_counts": {str(c): sum(r["habitability_class"] == c for r in ok) for c in (0, 1, 2)},
        "modalities_present": {m: sum(r[f"has_{m}"] for r in ok) for m in ("datacube", "graph", "spectrum", "text")},
        "sources": dict(Counter(r["source"] for r in rows)),
        "shards": len({r["shard"] for r in rows}),
        "resolution": meta.get("resolution"),
        "grid_shape": (meta.get("grid") or {}).get("shape"),
        "schema_version": meta.get("schema_version"),
    }


def run_summary(store, run_id: str) -> dict[str, Any]:
    """One run: its index row, array shapes, labels and annotation (units, CF names, provenance)."""
    row = store.index_row(run_id)
    a = store.load_arrays(run_id)
    shapes = {k: list(a[k].shape) for k in ("datacube_prior", "datacube_true", "spectrum", "graph_x",
                                           "graph_edge_index") if a[k] is not None}
    ann = store.load_annotation(run_id)
    return {"index": row, "shapes": shapes, "labels": a["labels"], "text": a["text"],
            "units": {**{f"{k}:{v['name']}": v["units"] for k in ("datacube_prior", "datacube_true")
                         for v in ann["arrays"][k]["variables"]},
                      **{f"coords:{k}": v["units"] for k, v in ann["coordinates"].items()}},
            "standard_names": {v["name"]: v["standard_name"] for v in ann["arrays"]["datacube_true"]["variables"]},
            "provenance": ann["provenance"], "domain_tags": ann["domain_tags"]}


def _table(title: str, items: dict[str, Any]):
    from rich.table import Table

    table = Table(title=title)
    table.add_column("field")
    table.add_column("value")
    for k, v in items.items():
        table.add_row(k, v if isinstance(v, str) else json.dumps(v, default=str))
    return table


@data_app.command()
def quality(directory: Path = typer.Argument(..., help="store directory"),
            as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
            quarantine: bool = typer.Option(True, "--quarantine/--no-quarantine",
                                            help="flag failing runs in the index"),
            strict: bool = typer.Option(False, "--strict", help="exit 1 when the thresholds are not met"),
            verify_hashes: bool = typer.Option(True, "--verify-hashes/--no-verify-hashes",
                                               help="recompute each run's content hash and compare it with the "
                                                    "one recorded at write time")):
    """Assess data quality; failing runs are quarantined (never deleted); store problems are listed."""
    from rich.console import Console

    from astrobio.data.quality import AdvancedDataQualityManager
    from astrobio.errors import AstrobioError

    try:
        report = AdvancedDataQualityManager().assess_data_quality(_open(directory), quarantine=quarantine,
                                                                  verify_hashes=verify_hashes)
    except AstrobioError as exc:
        _fail(exc)
    if as_json:
        typer.echo(report.to_json())
    else:
        console = Console()
        console.print(report.render())
        if report.quarantined:
            console.print(f"{len(report.quarantined)} runs quarantined; `astrobio data restore DIR RUN_ID` lifts it")
        if report.storage_problems:
            console.print(f"{len(report.storage_problems)} store problems; `astrobio data repair {directory}` "
                          "fixes them (`--dry-run` shows how first)")
    if strict and not report.passed:
        raise typer.Exit(code=1)


@data_app.command()
def repair(directory: Path = typer.Argument(..., help="store directory"),
           dry_run: bool = typer.Option(False, "--dry-run", help="print what would be done, change nothing"),
           as_json: bool = typer.Option(False, "--json")):
    """Rebuild the index from the shards; move unreadable and stale files to DIR/quarantine/ (nothing deleted)."""
    from astrobio.data.repair import repair_store, repair_summary
    from astrobio.errors import AstrobioError

    try:
        report = repair_store(directory, dry_run=dry_run)
    except AstrobioError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=1))
        return
    prefix = "would " if dry_run else ""
    for action in report.actions:
        typer.echo(f"{prefix}{action}")
    if not report.actions:
        typer.echo("nothing to repair: the index and the shards agree")
    typer.echo(repair_summary(report))


@data_app.command()
def inspect(directory: Path = typer.Argument(..., help="store directory"),
            run_id: Optional[str] = typer.Argument(None, help="a run to describe (default: the whole store)"),
            as_json: bool = typer.Option(False, "--json")):
    """Summarise a store, or one run with its annotation."""
    from rich.console import Console

    from astrobio.errors import AstrobioError

    try:
        store = _open(directory)
        summary = run_summary(store, run_id) if run_id else store_summary(store)
    except AstrobioError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(summary, indent=1, default=str))
    else:
        Console().print(_table(f"run {run_id}" if run_id else f"store {directory}", summary))


@data_app.command()
def export(directory: Path = typer.Argument(..., help="store directory"),
           run_id: str = typer.Argument(...),
           fmt: ExportFormat = typer.Option(..., "--format", help="netcdf (datacube), csv (spectrum), graphml"),
           out: Path = typer.Option(..., "--out", help="output file"),
           which: ClimateRun = typer.Option(ClimateRun.true, "--which", help="netcdf: true or prior climate run")):
    """Export one modality of a run to a community format."""
    from astrobio.data.export import export_netcdf, export_run
    from astrobio.errors import AstrobioError

    try:
        store = _open(directory)
        path = (export_netcdf(store, run_id, out, which.value) if fmt is ExportFormat.netcdf
                else export_run(store, run_id, fmt.value, out))
    except AstrobioError as exc:
        _fail(exc)
    typer.echo(f"wrote {path}")


@data_app.command()
def sources(as_json: bool = typer.Option(False, "--json")):
    """List the data sources with provenance, licence and citation."""
    from rich.console import Console
    from rich.table import Table

    from astrobio.data.sources import list_sources

    entries = [s.to_dict() for s in list_sources()]
    if as_json:
        typer.echo(json.dumps(entries, indent=1))
        return
    table = Table(title="astrobio data sources")
    for col in ("name", "kind", "licence", "citation", "location"):
        table.add_column(col, overflow="fold")
    for e in entries:
        table.add_row(*(e[c] + (" (online)" if c == "kind" and e["online"] else "")
                        for c in ("name", "kind", "licence", "citation", "location")))
    Console().print(table)


@data_app.command()
def restore(directory: Path = typer.Argument(..., help="store directory"), run_id: str = typer.Argument(...)):
    """Lift the quarantine of a run."""
    from astrobio.errors import AstrobioError

    try:
        store = _open(directory)
        before = store.index_row(run_id)
        store.restore(run_id)
    except AstrobioError as exc:
        _fail(exc)
    state = f"was quarantined for {before['quarantine_reasons']}" if before["quarantined"] else "was not quarantined"
    typer.echo(f"restored {run_id} ({state})")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")

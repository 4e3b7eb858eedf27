"""`astrobio data ...`: quality control, repair, inspection, export, sources and quarantine restore of a store.

`quality --strict` exits 1 when the store does not meet the thresholds.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from astrobio.data.sources import list_sources

data_app = typer.Typer(help="Curate a planet-run store: quality, repair, inspect, export, sources, restore.",
                       no_args_is_help=True)
STORE = typer.Argument(..., metavar="STORE", help="store directory (written by `astrobio simulate`)")


class ExportFormat(str, Enum):
    netcdf = "netcdf"
    csv = "csv"
    graphml = "graphml"


class ClimateRun(str, Enum):
    true = "true"
    prior = "prior"


def _table(title: str, items: dict[str, Any]) -> Table:
    table = Table(title=title)
    table.add_column("field")
    table.add_column("value")
    for k, v in items.items():
        table.add_row(k, v if isinstance(v, str) else json.dumps(v, default=str))
    return table


@data_app.command()
def quality(store: Path = STORE,
            as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
            quarantine: bool = typer.Option(True, "--quarantine/--no-quarantine",
                                            help="flag failing runs in the index"),
            strict: bool = typer.Option(False, "--strict", help="exit 1 when the thresholds are not met"),
            verify_hashes: bool = typer.Option(True, "--verify-hashes/--no-verify-hashes",
                                               help="recompute each run's content hash and compare it with the "
                                                    "one recorded at write time")):
    """Assess data quality; failing runs are quarantined (never deleted); store problems are listed."""
    # imported here, not at start-up: h5py and the store take a second to import
    from astrobio.data.quality import AdvancedDataQualityManager
    from astrobio.data.summary import open_store

    report = AdvancedDataQualityManager().assess_data_quality(open_store(store), quarantine=quarantine,
                                                              verify_hashes=verify_hashes)
    if as_json:
        typer.echo(report.to_json())
    else:
        console = Console()
        console.print(report.render())
        if report.quarantined:
            console.print(f"{len(report.quarantined)} runs quarantined; `astrobio data restore STORE RUN_ID` lifts it")
        if report.storage_problems:
            console.print(f"{len(report.storage_problems)} store problems; `astrobio data repair {store}` "
                          "fixes them (`--dry-run` shows how first)")
    if strict and not report.passed:
        raise typer.Exit(code=1)


@data_app.command()
def repair(store: Path = STORE,
           dry_run: bool = typer.Option(False, "--dry-run", help="print what would be done, change nothing"),
           as_json: bool = typer.Option(False, "--json")):
    """Rebuild the index from the shards; move unreadable and stale files to STORE/quarantine/ (nothing deleted)."""
    # imported here, not at start-up: h5py and the store take a second to import
    from astrobio.data.repair import repair_store, repair_summary

    report = repair_store(store, dry_run=dry_run)
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
def inspect(store: Path = STORE,
            run_id: Optional[str] = typer.Argument(None, help="a run to describe (default: the whole store)"),
            as_json: bool = typer.Option(False, "--json")):
    """Summarise a store, or one run with its annotation."""
    # imported here, not at start-up: h5py and the store take a second to import
    from astrobio.data.summary import open_store, run_summary, store_summary

    opened = open_store(store)
    summary = run_summary(opened, run_id) if run_id else store_summary(opened)
    if as_json:
        typer.echo(json.dumps(summary, indent=1, default=str))
    else:
        Console().print(_table(f"run {run_id}" if run_id else f"store {store}", summary))


@data_app.command()
def export(store: Path = STORE,
           run_id: str = typer.Argument(...),
           fmt: ExportFormat = typer.Option(..., "--format", help="netcdf (datacube), csv (spectrum), graphml"),
           out: Path = typer.Option(..., "--out", help="file to write"),
           which: ClimateRun = typer.Option(ClimateRun.true, "--which", help="netcdf: true or prior climate run")):
    """Export one modality of a run to a community format."""
    # imported here, not at start-up: xarray, netCDF and h5py take seconds to import
    from astrobio.data.export import export_netcdf, export_run
    from astrobio.data.summary import open_store

    opened = open_store(store)
    path = (export_netcdf(opened, run_id, out, which.value) if fmt is ExportFormat.netcdf
            else export_run(opened, run_id, fmt.value, out))
    typer.echo(f"wrote {path}")


@data_app.command()
def sources(as_json: bool = typer.Option(False, "--json")):
    """List the data sources with provenance, licence and citation."""
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
def restore(store: Path = STORE, run_id: str = typer.Argument(...)):
    """Lift the quarantine of a run."""
    # imported here, not at start-up: h5py and the store take a second to import
    from astrobio.data.summary import open_store

    opened = open_store(store)
    before = opened.index_row(run_id)
    opened.restore(run_id)
    state = f"was quarantined for {before['quarantine_reasons']}" if before["quarantined"] else "was not quarantined"
    typer.echo(f"restored {run_id} ({state})")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")

"""Export stored runs to community formats: CF-1.8 netCDF (datacube), CSV (spectrum), GraphML (graph).

Every file is written through `astrobio.io.atomic_path` (temp file in the target directory, fsync,
rename), so a reader never sees a half-written export.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from astrobio.data.storage import RealDataStorage
from astrobio.errors import InputValidationError, StorageError
from astrobio.io import atomic_path, atomic_write
from astrobio.world.atmosphere import PRIOR_SURFACE_PRESSURE_BAR

FORMATS = ("netcdf", "csv", "graphml")
_CUBES = {"true": "datacube_true", "prior": "datacube_prior"}


def _storage(storage):
    return RealDataStorage(storage) if isinstance(storage, (str, os.PathLike)) else storage


def _attr(v: Any) -> Any:
    """netCDF attributes take str, numbers and lists of them (no None/bool/dict)."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (list, tuple)):
        return [_attr(x) for x in v]
    return v


def datacube_dataset(arrays: dict[str, Any], annotation: dict[str, Any], which: str = "true"):
    """One climate run of a stored run as a CF-1.8 xarray Dataset.

    Variables air_temperature, specific_humidity (month, lat, lon, lev); vertical coordinate
    atmosphere_sigma_coordinate with formula terms p = ptop + lev (ps − ptop), ps the run's surface
    pressure (the true label for the true run, 1 bar for the prior run), ptop = 0.
    """
    import xarray as xr

    if which not in _CUBES:
        raise InputValidationError("which", which, f"one of {tuple(_CUBES)}")
    key = _CUBES[which]
    cube = arrays[key]  # (vars, 12, lat, lon, lev)
    meta = annotation["arrays"][key]
    coords_meta = annotation["coordinates"]
    c = arrays["coords"]
    dims = ("month", "lat", "lon", "lev")
    coords = {
        "month": ("month", c["month"], {k: v for k, v in coords_meta["month"].items() if k != "axis"}),
        "lat": ("lat", c["lat_deg"], coords_meta["lat_deg"]),
        "lon": ("lon", c["lon_deg"], coords_meta["lon_deg"]),
        "lev": ("lev", c["sigma"], {**coords_meta["sigma"], "formula_terms": "sigma: lev ps: ps ptop: ptop"}),
    }
    data_vars = {
        var["name"]: (dims, cube[i], {"standard_name": var["standard_name"], "units": var["units"],
                                      "long_name": f"{var['long_name']} ({meta['long_name']})"})
        for i, var in enumerate(meta["variables"])
    }
    ps_bar = float(arrays["labels"]["surface_pressure_bar"]) if which == "true" else PRIOR_SURFACE_PRESSURE_BAR
    ps = ps_bar * 1e5  # Pa
    data_vars["ps"] = ((), np.float64(ps), {"standard_name": "surface_air_pressure", "units": "Pa"})
    data_vars["ptop"] = ((), np.float64(0.0), {"standard_name": "air_pressure", "units": "Pa",
                                               "long_name": "pressure at the model top"})
    prov = annotation["provenance"]
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    attrs = {
        "Conventions": "CF-1.8",
        "title": f"astrobio {which} climate run of {arrays['observed'].get('name', arrays['run_id'])}",
        "institution": "astrobio",
        "source": f"astrobio {prov['package_version']} ({prov['source']}); seasonal energy-balance model",
        "history": f"{prov['created_utc']} simulated; {now} exported by astrobio.data.export",
        "references": "SPEC.md (astrobio design); Spiegel et al. 2008; Williams & Kasting 1997",
        "run_id": arrays["run_id"],
        "system": arrays["system"],
        "climate_run": which,
        "provenance_source": prov["source"],
        "package_version": prov["package_version"],
        "git_revision": prov["git_revision"] or "unknown",
        "seed": int(prov["seed"]),
        "config_hash": prov["config_hash"],
        "created_utc": prov["created_utc"],
    }
    ds = xr.Dataset(data_vars=data_vars, coords=coords, attrs=attrs)
    for name in ds.variables:
        ds[name].attrs = {k: _attr(v) for k, v in ds[name].attrs.items() if v is not None}
    return ds


def export_netcdf(storage, run_id: str, path: str | os.PathLike, which: str = "true") -> Path:
    """Write one climate run of `run_id` as CF-1.8 netCDF-4 (zlib-compressed float32)."""
    store = _storage(storage)
    ds = datacube_dataset(store.load_arrays(run_id), store.load_annotation(run_id), which)
    encoding = {v: {"zlib": True, "complevel": 4} for v in ("air_temperature", "specific_humidity")}
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=encoding)
    return Path(path)


def export_spectrum_csv(storage, run_id: str, path: str | os.PathLike) -> Path:
    """Write the spectrum of `run_id`: '#' metadata lines, a header with units, one row per wavelength."""
    store = _storage(storage)
    a = store.load_arrays(run_id)
    if a["spectrum"] is None:
        raise StorageError(f"run {run_id!r} has no spectrum (the planet was observed in 0 transits)")
    annotation = store.load_annotation(run_id)
    cols, prov = annotation["arrays"]["spectrum"]["columns"], annotation["provenance"]
    header = ",".join(f"{c['name']}_{c['units']}" for c in cols)
    lines = [f"# astrobio transmission spectrum of run {run_id} ({a['observed'].get('name', '')})",
             f"# columns: {'; '.join(c['name'] + ' [' + c['units'] + '] ' + c['long_name'] for c in cols)}",
             f"# source: {prov['source']}, astrobio {prov['package_version']}, seed {prov['seed']}",
             header]
    # %.9g: 9 significant digits round-trip every float32 exactly
    lines += [",".join(f"{v:.9g}" for v in row) for row in a["spectrum"].tolist()]
    with atomic_write(path) as f:
        f.write("\n".join(lines) + "\n")
    return Path(path)


def export_graphml(storage, run_id: str, path: str | os.PathLike) -> Path:
    """Write the metabolic graph of `run_id` as a directed GraphML graph (node features x0..x{F-1})."""
    import networkx as nx

    store = _storage(storage)
    a = store.load_arrays(run_id)
    if a["graph_x"] is None:
        raise StorageError(f"run {run_id!r} has no metabolic graph")
    x, ei = a["graph_x"], a["graph_edge_index"]  # (N, F), (2, E)
    g = nx.DiGraph(run_id=run_id, system=a["system"], num_node_features=int(x.shape[1]),
                   description="metabolic network permitted by the observed environment (astrobio)")
    for i, row in enumerate(x.tolist()):
        g.add_node(f"n{i}", **{f"x{j}": v for j, v in enumerate(row)})
    g.add_edges_from((f"n{s}", f"n{t}") for s, t in ei.T.tolist())
    with atomic_path(path) as tmp:
        nx.write_graphml(g, tmp)
    return Path(path)


def export_run(storage, run_id: str, fmt: str, path: str | os.PathLike) -> Path:
    """Export one modality of a run: netcdf (true datacube), csv (spectrum) or graphml (graph)."""
    writers = {"netcdf": export_netcdf, "csv": export_spectrum_csv, "graphml": export_graphml}
    if fmt not in writers:
        raise InputValidationError("format", fmt, f"one of {FORMATS}")
    return writers[fmt](storage, run_id, path)


__all__ = ["datacube_dataset", "export_netcdf", "export_spectrum_csv", "export_graphml", "export_run", "FORMATS"]

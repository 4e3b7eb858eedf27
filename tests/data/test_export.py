"""Exports: CF netCDF re-opens with the same values and units; CSV and GraphML round trip."""

from __future__ import annotations

import numpy as np
import pytest

from astrobio.data.export import export_netcdf, export_run, export_spectrum_csv
from astrobio.data.storage import RealDataStorage
from astrobio.errors import InputValidationError, StorageError


@pytest.fixture
def store(store_path, runs):
    s = RealDataStorage(store_path)
    s.write_runs(runs)
    return s


def test_netcdf_round_trip_cf(store, runs, tmp_path):
    import xarray as xr

    path = export_netcdf(store, "run-0000", tmp_path / "out" / "run0.nc")
    with xr.open_dataset(path) as ds:
        assert ds.attrs["Conventions"] == "CF-1.8" and ds.attrs["run_id"] == "run-0000"
        assert ds.attrs["provenance_source"] == "simulator" and len(ds.attrs["config_hash"]) == 64
        t, q = ds["air_temperature"], ds["specific_humidity"]
        assert t.dims == ("month", "lat", "lon", "lev") and t.dtype == np.float32
        assert (t.attrs["units"], t.attrs["standard_name"]) == ("K", "air_temperature")
        assert (q.attrs["units"], q.attrs["standard_name"]) == ("kg kg-1", "specific_humidity")
        assert np.array_equal(t.values, runs[0].datacube_true[0]) and np.array_equal(q.values, runs[0].datacube_true[1])
        assert ds["lat"].attrs["units"] == "degrees_north" and ds["lon"].attrs["standard_name"] == "longitude"
        lev = ds["lev"]
        assert lev.attrs["standard_name"] == "atmosphere_sigma_coordinate"
        assert lev.attrs["formula_terms"] == "sigma: lev ps: ps ptop: ptop"
        assert np.array_equal(lev.values, runs[0].coords["sigma"])
        assert float(ds["ps"]) == pytest.approx(1.2e5) and ds["ps"].attrs["units"] == "Pa"
    prior = export_netcdf(store, "run-0000", tmp_path / "prior.nc", which="prior")
    with xr.open_dataset(prior) as ds:
        assert np.array_equal(ds["air_temperature"].values, runs[0].datacube_prior[0])
        assert float(ds["ps"]) == 1e5 and ds.attrs["climate_run"] == "prior"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "prior.nc", "store"]  # no temp files left
    with pytest.raises(InputValidationError, match="which"):
        export_netcdf(store, "run-0000", tmp_path / "x.nc", which="both")


def test_spectrum_csv_round_trip(store, runs, tmp_path):
    path = export_spectrum_csv(store, "run-0001", tmp_path / "spec.csv")
    lines = path.read_text().splitlines()
    assert lines[3] == "wavelength_um,transit_depth_ppm,transit_depth_sigma_ppm"
    assert lines[0].startswith("# astrobio transmission spectrum of run run-0001")
    back = np.loadtxt(path, delimiter=",", skiprows=4, dtype=np.float64).astype(np.float32)
    assert back.shape == (50, 3) and np.array_equal(back, runs[1].spectrum)
    with pytest.raises(StorageError, match="no spectrum"):
        export_spectrum_csv(store, "run-0002", tmp_path / "none.csv")
    assert not (tmp_path / "none.csv").exists()


def test_graphml_round_trip(store, runs, tmp_path):
    import networkx as nx

    path = export_run(store.path, "run-0003", "graphml", tmp_path / "g.graphml")  # a store path works too
    g = nx.read_graphml(path)
    assert g.is_directed() and g.number_of_nodes() == 5 and g.number_of_edges() == 6
    assert g.graph["run_id"] == "run-0003"
    ei = runs[3].graph.edge_index.numpy()
    assert sorted(g.edges()) == sorted((f"n{s}", f"n{t}") for s, t in ei.T)
    x = np.array([[g.nodes[f"n{i}"][f"x{j}"] for j in range(64)] for i in range(5)], dtype=np.float32)
    assert np.array_equal(x, runs[3].graph.x.numpy())
    with pytest.raises(InputValidationError, match="format"):
        export_run(store, "run-0003", "hdf4", tmp_path / "g.hdf")

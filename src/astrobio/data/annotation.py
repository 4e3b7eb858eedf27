"""Metadata annotation of planet runs: units, CF names, provenance and domain tags.

Every stored array and numeric scalar carries a unit string. Units follow the CF conventions
(udunits spelling, e.g. `degrees_north`, `kg kg-1`) and are checked with astropy: `astropy_unit()`
maps the few CF-only spellings (geographic degrees, ppm) to astropy before parsing. Standard names
come from the CF standard-name table (v84): canonical units `air_temperature` K, `specific_humidity` 1,
`latitude` degrees_north, `longitude` degrees_east, `atmosphere_sigma_coordinate` 1.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import fields
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from astrobio import __version__
from astrobio.errors import AnnotationError, InputValidationError
from astrobio.io import canonical_json, git_revision
from astrobio.world.types import LABEL_KEYS, PlanetRun

SCHEMA = "astrobio-annotation/1"
SOURCES = ("simulator", "catalog", "solar_system")
DOMAIN_TAGS = ("stellar", "orbital", "climate", "atmosphere", "spectroscopy", "metabolism", "text")
# PlanetTruth.source → provenance source
_TRUTH_SOURCE = {"synthetic": "simulator", "catalog": "catalog", "solar_system": "solar_system"}

# Datacube variables in storage order (world/climate.py ClimateResult.datacube): CF standard names.
DATACUBE_VARIABLES = (
    {"name": "air_temperature", "standard_name": "air_temperature", "units": "K",
     "long_name": "air temperature"},
    {"name": "specific_humidity", "standard_name": "specific_humidity", "units": "kg kg-1",
     "long_name": "specific humidity (mass of water vapour per mass of moist air)"},
)
DATACUBE_DIMS = ("variable", "time", "lat", "lon", "lev")

COORDINATES = {
    "month": {"units": "1", "long_name": "month of the orbital year (1-12)", "axis": "T",
              "comment": "twelve equal-time slices of the orbit; month 1 starts at the northern vernal equinox "
                         "(for Earth 20 March - 19 April); tidally locked planets have no seasons"},
    "lat_deg": {"units": "degrees_north", "standard_name": "latitude", "long_name": "latitude", "axis": "Y"},
    "lon_deg": {"units": "degrees_east", "standard_name": "longitude", "long_name": "longitude", "axis": "X"},
    "sigma": {"units": "1", "standard_name": "atmosphere_sigma_coordinate",
              "long_name": "sigma = p / p_surface", "axis": "Z", "positive": "down",
              "formula_terms": "sigma: sigma ps: surface_air_pressure ptop: 0"},
}

SPECTRUM_COLUMNS = (
    {"name": "wavelength", "units": "um", "long_name": "wavelength"},
    {"name": "transit_depth", "units": "ppm", "long_name": "transit depth (Rp/Rs)^2 with atmosphere"},
    {"name": "transit_depth_sigma", "units": "ppm", "long_name": "1-sigma noise of the transit depth"},
)
GRAPH_ARRAYS = {
    "graph/x": {"units": "1", "long_name": "metabolic network node features"},
    "graph/edge_index": {"units": "1", "long_name": "directed edges (source, target) as node indices"},
}

# Canonical units of the CF standard names we use; an annotated unit must convert to these.
CF_CANONICAL_UNITS = {
    "air_temperature": "K",
    "specific_humidity": "1",
    "latitude": "degrees_north",
    "longitude": "degrees_east",
    "atmosphere_sigma_coordinate": "1",
}

# CF/udunits spellings astropy does not parse, and their astropy equivalents.
_CF_TO_ASTROPY = {"degrees_north": "deg", "degrees_east": "deg", "ppm": "1e-6", "percent": "%"}

# Units of PlanetTruth / PlanetObserved / label fields (the suffix of each name is the unit).
SCALAR_UNITS = {
    "star_teff_k": "K", "star_radius_rsun": "solRad", "star_mass_msun": "solMass",
    "star_luminosity_lsun": "solLum", "star_age_gyr": "Gyr", "star_activity": "1",
    "distance_pc": "pc", "star_jmag": "mag", "planet_radius_earth": "earthRad",
    "planet_mass_earth": "earthMass", "semimajor_axis_au": "AU", "eccentricity": "1",
    "obliquity_deg": "deg", "rotation_period_days": "d", "surface_pressure_bar": "bar",
    "ocean_fraction": "1", "surface_albedo": "1", "cloud_top_pressure_bar": "bar", "n_transits": "1",
    "discovery_year": "yr", "period_days": "d", "instellation_searth": "1",
    "equilibrium_temperature_k": "K", "composition": "mol mol-1",
    # labels
    "habitability_class": "1", "mean_surface_temperature_k": "K", "liquid_water_fraction": "1",
    "log10_co2": "dex", "log10_ch4": "dex", "log10_o2": "dex", "log10_h2o": "dex",
}
# Physical type each unit suffix implies (catches e.g. a temperature annotated in metres).
_SUFFIX_TYPE = {"_k": "temperature", "_bar": "pressure", "_au": "length", "_pc": "length",
                "_rsun": "length", "_msun": "mass", "_gyr": "time", "_days": "time", "_deg": "angle"}


def astropy_unit(units: str):
    """Parse a CF/udunits unit string with astropy (raises ValueError when it cannot)."""
    if not isinstance(units, str):
        raise ValueError(f"unit must be a string, got {units!r}")
    return _parse_unit(units)


@lru_cache(maxsize=256)
def _parse_unit(units: str):
    # astropy's parser costs ~0.5 ms a call and a run has ~60 unit strings, nearly all the same
    import astropy.units as u

    return u.Unit(_CF_TO_ASTROPY.get(units, units))


def config_hash(config: dict[str, Any] | None) -> str:
    """sha256 of the canonical JSON of a configuration (sorted keys, no whitespace)."""
    return hashlib.sha256(canonical_json(config or {}).encode("utf-8")).hexdigest()


def _numeric_fields(record) -> list[str]:
    """Names of the numeric (non-bool, non-str) fields of a PlanetTruth/PlanetObserved."""
    names = []
    for f in fields(record):
        v = getattr(record, f.name)
        if isinstance(v, dict) or (isinstance(v, (int, float)) and not isinstance(v, bool)):
            names.append(f.name)
    return names


class ComprehensiveDataAnnotationSystem:
    """Builds and validates the annotation dict that storage writes beside every run."""

    def annotate(self, run: PlanetRun, *, source: str | None = None, seed: int | None = None,
                 config: dict[str, Any] | None = None) -> dict[str, Any]:
        """Annotation of `run`. `source` defaults from `run.truth.source`, `seed` from `run.seed`."""
        if source is None:
            source = _TRUTH_SOURCE.get(run.truth.source, run.truth.source)
        if source not in SOURCES:
            raise InputValidationError("source", source, f"one of {SOURCES}")
        seed = run.seed if seed is None else seed
        present = run.modality_present()
        arrays: dict[str, Any] = {}
        for key in ("datacube_prior", "datacube_true"):
            arrays[key] = {"dims": list(DATACUBE_DIMS), "variables": [dict(v) for v in DATACUBE_VARIABLES],
                           "long_name": ("climate run from the observed parameters and the prior atmosphere"
                                         if key == "datacube_prior" else
                                         "climate run from the true parameters and true atmosphere")}
        if run.spectrum is not None:
            arrays["spectrum"] = {"dims": ["wavelength", "column"], "columns": [dict(c) for c in SPECTRUM_COLUMNS],
                                  "long_name": "transmission spectrum with instrument noise"}
        if run.graph is not None:
            arrays.update({k: dict(v) for k, v in GRAPH_ARRAYS.items()})
        scalars = {
            "truth": {k: SCALAR_UNITS[k] for k in _numeric_fields(run.truth)},
            "observed": {k: SCALAR_UNITS[k] for k in _numeric_fields(run.observed)},
            "labels": {k: SCALAR_UNITS[k] for k in run.labels},
        }
        tags = ["stellar", "orbital", "atmosphere"]
        tags += [t for t, m in (("climate", "datacube"), ("spectroscopy", "spectrum"),
                                ("metabolism", "graph"), ("text", "text")) if present[m]]
        return {
            "schema": SCHEMA,
            "run_id": run.run_id,
            "arrays": arrays,
            "coordinates": {k: dict(v) for k, v in COORDINATES.items()},
            "text": {"encoding": "utf-8", "long_name": "observing log"},
            "scalars": scalars,
            "provenance": {
                "source": source,
                "package": "astrobio",
                "package_version": __version__,
                "git_revision": git_revision(),
                "seed": int(seed),
                "config_hash": config_hash(config),
                "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
            "domain_tags": [t for t in DOMAIN_TAGS if t in tags],
        }

    def validate(self, annotation: dict[str, Any] | None, run: PlanetRun) -> None:
        """Raise AnnotationError naming the first missing or inconsistent part of `annotation`."""
        if not isinstance(annotation, dict):
            raise AnnotationError(f"run {run.run_id!r}: annotation missing (got {type(annotation).__name__})")
        where = f"run {run.run_id!r}"
        for key in ("schema", "run_id", "arrays", "coordinates", "scalars", "provenance", "domain_tags"):
            if key not in annotation:
                raise AnnotationError(f"{where}: annotation lacks {key!r}")
        if annotation["schema"] != SCHEMA:
            raise AnnotationError(f"{where}: annotation schema {annotation['schema']!r}, expected {SCHEMA!r}")
        if annotation["run_id"] != run.run_id:
            raise AnnotationError(f"{where}: annotation is for run {annotation['run_id']!r}")
        _check_arrays(where, annotation["arrays"], run)
        _check_coordinates(where, annotation["coordinates"], run)
        _check_scalars(where, annotation["scalars"], run)
        _check_provenance(where, annotation["provenance"], run)
        tags = annotation["domain_tags"]
        if not tags or not set(tags) <= set(DOMAIN_TAGS):
            raise AnnotationError(f"{where}: domain_tags {tags!r} must be a non-empty subset of {DOMAIN_TAGS}")


def _check_unit(where: str, name: str, units: Any, standard_name: str | None = None,
                physical_type: str | None = None) -> None:
    """The unit parses and, when a CF standard name or a physical type applies, is consistent with it."""
    try:
        unit = astropy_unit(units)
    except ValueError:
        raise AnnotationError(f"{where}: unit {units!r} of {name} is not parseable") from None
    if standard_name is not None:
        if standard_name not in CF_CANONICAL_UNITS:
            raise AnnotationError(f"{where}: unknown CF standard_name {standard_name!r} for {name}")
        canonical = astropy_unit(CF_CANONICAL_UNITS[standard_name])
        if not unit.is_equivalent(canonical):
            raise AnnotationError(f"{where}: unit {units!r} of {name} is inconsistent with standard_name "
                                  f"{standard_name!r} (canonical {CF_CANONICAL_UNITS[standard_name]!r})")
    if physical_type is not None and str(unit.physical_type) != physical_type and \
            physical_type not in str(unit.physical_type).split("/"):
        raise AnnotationError(f"{where}: unit {units!r} of {name} is not a {physical_type}")


def _check_arrays(where: str, arrays: dict[str, Any], run: PlanetRun) -> None:
    for key in ("datacube_prior", "datacube_true"):
        cube = getattr(run, key)
        meta = arrays.get(key)
        if meta is None:
            raise AnnotationError(f"{where}: array {key} is not annotated")
        variables = meta.get("variables") or []
        if cube is not None and len(variables) != cube.shape[0]:
            raise AnnotationError(f"{where}: {key} has {cube.shape[0]} variables but {len(variables)} CF names")
        if list(meta.get("dims", [])) != list(DATACUBE_DIMS):
            raise AnnotationError(f"{where}: {key} dims {meta.get('dims')!r}, expected {list(DATACUBE_DIMS)}")
        for var in variables:
            if "standard_name" not in var or "units" not in var:
                raise AnnotationError(f"{where}: {key} variable {var.get('name')!r} lacks standard_name/units")
            _check_unit(where, f"{key}:{var.get('name')}", var["units"], var["standard_name"])
    for key, present in (("spectrum", run.spectrum is not None), ("graph/x", run.graph is not None),
                         ("graph/edge_index", run.graph is not None)):
        if present != (key in arrays):
            state = "present but not annotated" if present else "annotated but absent"
            raise AnnotationError(f"{where}: array {key} is {state}")
    if "spectrum" in arrays:
        columns = arrays["spectrum"].get("columns") or []
        if len(columns) != run.spectrum.shape[1]:
            raise AnnotationError(f"{where}: spectrum has {run.spectrum.shape[1]} columns, "
                                  f"{len(columns)} annotated")
        for col, ptype in zip(columns, ("length", "dimensionless", "dimensionless")):
            _check_unit(where, f"spectrum:{col.get('name')}", col.get("units"), physical_type=ptype)
    for key in GRAPH_ARRAYS:
        if key in arrays:
            _check_unit(where, key, arrays[key].get("units"))


def _check_coordinates(where: str, coords: dict[str, Any], run: PlanetRun) -> None:
    cube_axes = {"month": 1, "lat_deg": 2, "lon_deg": 3, "sigma": 4}
    for name, axis in cube_axes.items():
        meta = coords.get(name)
        if meta is None or "units" not in meta:
            raise AnnotationError(f"{where}: coordinate {name} is not annotated with units")
        required = COORDINATES[name].get("standard_name")
        if required is not None and meta.get("standard_name") != required:
            raise AnnotationError(f"{where}: coordinate {name} needs standard_name {required!r}, "
                                  f"got {meta.get('standard_name')!r}")
        _check_unit(where, f"coordinate {name}", meta["units"], meta.get("standard_name"))
        if name not in run.coords:
            raise AnnotationError(f"{where}: coordinate {name} is annotated but the run has no values")
        n, expected = len(run.coords[name]), run.datacube_prior.shape[axis]
        if n != expected:
            raise AnnotationError(f"{where}: coordinate {name} has {n} values but the datacube has {expected}")


def _check_scalars(where: str, scalars: dict[str, Any], run: PlanetRun) -> None:
    groups = {"truth": _numeric_fields(run.truth), "observed": _numeric_fields(run.observed),
              "labels": list(run.labels)}
    for group, names in groups.items():
        units = scalars.get(group)
        if not isinstance(units, dict):
            raise AnnotationError(f"{where}: scalars.{group} is not annotated")
        for name in names:
            if name not in units:
                raise AnnotationError(f"{where}: scalar {group}.{name} has no unit")
            ptype = next((t for s, t in _SUFFIX_TYPE.items() if name.endswith(s)), None)
            _check_unit(where, f"{group}.{name}", units[name], physical_type=ptype)
    missing = [k for k in LABEL_KEYS if k not in run.labels]
    if missing:
        raise AnnotationError(f"{where}: labels lack {missing}")


def _check_provenance(where: str, prov: dict[str, Any], run: PlanetRun) -> None:
    for key in ("source", "package_version", "git_revision", "seed", "config_hash", "created_utc"):
        if key not in prov:
            raise AnnotationError(f"{where}: provenance lacks {key!r}")
    if prov["source"] not in SOURCES:
        raise AnnotationError(f"{where}: provenance source {prov['source']!r} not in {SOURCES}")
    if prov["seed"] != run.seed:
        raise AnnotationError(f"{where}: provenance seed {prov['seed']!r} != run seed {run.seed}")
    digest = prov["config_hash"]
    if not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
        raise AnnotationError(f"{where}: config_hash {digest!r} is not a sha256 hex digest")
    try:
        created = datetime.fromisoformat(prov["created_utc"])
    except (TypeError, ValueError):
        raise AnnotationError(f"{where}: created_utc {prov['created_utc']!r} is not ISO 8601") from None
    if created.utcoffset() is None or not math.isclose(created.utcoffset().total_seconds(), 0.0):
        raise AnnotationError(f"{where}: created_utc {prov['created_utc']!r} is not in UTC")


__all__ = ["ComprehensiveDataAnnotationSystem", "astropy_unit", "config_hash",
           "DATACUBE_VARIABLES", "COORDINATES", "SPECTRUM_COLUMNS", "SCALAR_UNITS", "DOMAIN_TAGS", "SOURCES"]

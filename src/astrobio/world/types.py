"""The records the world produces: the true planet, what an observer sees, and one planet run.

Units are in the field names (SI unless the name says otherwise). Missing observed values are NaN.
These dataclasses are the contract between world/, data/ and the models (docs/architecture.md).
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from astrobio.constants import AU, DAY, G, M_SUN
from astrobio.errors import InputValidationError, check_finite_range
from astrobio.world import stars
# GASES (the composition's keys) and BIOSPHERES are defined with the chemistry that uses them and are part
# of this contract; `normalise` checks a composition's ranges.
from astrobio.world.atmosphere import BIOSPHERES, GASES, normalise

# habitability_class values (SPEC.md "Labels"): class c is CLASS_NAMES[c].
CLASS_NAMES = ("not_habitable", "habitable", "inhabited")

# The four modalities of a run, in the order of every per-modality array (`MultiModalBatch.modality_mask`,
# the fusion's tokens, the store's has_* columns, `PlanetRun.modality_present`).
MODALITIES = ("datacube", "graph", "spectrum", "text")

# Label keys of every PlanetRun, in this order (regression targets follow the class).
LABEL_KEYS = (
    "habitability_class",
    "mean_surface_temperature_k",
    "liquid_water_fraction",
    "surface_pressure_bar",
    "log10_co2",
    "log10_ch4",
    "log10_o2",
    "log10_h2o",
)
REGRESSION_KEYS = LABEL_KEYS[1:]

# Hidden properties of the true planet that shape its spectrum but are neither labels nor observed exactly, in
# this order: auxiliary training targets only (learning using privileged information, Vapnik & Vashist 2009),
# never model inputs. `world.labels.privileged_targets` computes them.
PRIVILEGED_KEYS = (
    "log10_cloud_top_pressure_bar",
    "log10_planet_radius_earth",
    "log10_planet_mass_earth",
    "surface_albedo",
)

# Observed numeric features fed to the models, in this order (NaN = missing; data/ adds a mask).
OBSERVED_NUMERIC_FIELDS = (
    "star_teff_k",
    "star_radius_rsun",
    "star_mass_msun",
    "star_luminosity_lsun",
    "star_age_gyr",
    "distance_pc",
    "star_jmag",
    "planet_radius_earth",
    "planet_mass_earth",
    "semimajor_axis_au",
    "period_days",
    "eccentricity",
    "instellation_searth",
    "equilibrium_temperature_k",
    "n_transits",
)

# The physics features of a run (world/features.py), in this order: computed once from the observed values
# when the run is simulated and stored with it (`PlanetRun.physics_features`).
PHYSICS_FEATURES = (
    "log10_instellation_searth",
    "habitable_zone_position",
    "equilibrium_temperature_over_300k",
    "log10_prior_surface_pressure_bar",
)

# The observer's reading of its transmission spectrum (world/features.spectrum_reading), in this order: the
# retrieval's detection significance of each retrieved gas (asinh of sigma), the observer's atmosphere
# (log10 VMR, retrieved where constrained, the prior elsewhere, scaled to (log10 x + 6) / 6) and how strongly a
# clear prior atmosphere would stand out at this precision (asinh of sigma). Undefined (NaN) without a spectrum.
READING_GASES = ("CO2", "CH4", "H2O", "O3", "O2")  # = world.retrieval.RETRIEVED_GASES (a test holds them equal)
SPECTRUM_READING_FIELDS = (
    *(f"asinh_detection_sigma_{g}" for g in READING_GASES),
    *(f"scaled_log10_observer_vmr_{g}" for g in READING_GASES),
    "asinh_clear_atmosphere_sigma",
)


@dataclass
class PlanetTruth:
    """The true planet. Only the world sees it; labels and the spectrum come from it."""

    name: str
    system: str
    source: str  # "synthetic" | "catalog" | "solar_system"
    # star
    star_teff_k: float
    star_radius_rsun: float
    star_mass_msun: float
    star_luminosity_lsun: float
    star_age_gyr: float
    star_activity: float  # flare/XUV activity index in [0, 1] (0 = quiet, 1 = very active M dwarf)
    distance_pc: float
    star_jmag: float  # apparent J magnitude (sets photon noise)
    # planet and orbit
    planet_radius_earth: float
    planet_mass_earth: float
    semimajor_axis_au: float
    eccentricity: float
    obliquity_deg: float
    rotation_period_days: float  # sidereal; equals the orbital period when tidally locked
    tidally_locked: bool
    # surface and atmosphere
    surface_pressure_bar: float
    composition: dict[str, float]  # volume mixing ratios of GASES (before biosphere; see biosphere)
    ocean_fraction: float  # fraction of the surface that is ocean where liquid water is possible
    surface_albedo: float  # ice-free surface albedo (land/ocean mix), 0..1
    cloud_top_pressure_bar: float  # grey cloud deck top (spectrum is flat below it)
    biosphere: str  # one of BIOSPHERES: the active biosphere (atmosphere already includes its gases)
    atmosphere_retained: bool  # False when the atmosphere was eroded (e.g. active star, small planet)
    # observing scenario
    n_transits: int  # transits of transmission spectroscopy; 0 = no spectrum
    discovery_method: str = "transit"
    discovery_year: int = 2024
    # observables the catalog does not give: the truth holds an assumed value, the observation NaN
    catalog_missing: tuple[str, ...] = ()

    @property
    def period_days(self) -> float:
        a = self.semimajor_axis_au * AU
        return 2 * math.pi * math.sqrt(a**3 / (G * self.star_mass_msun * M_SUN)) / DAY

    @property
    def instellation_searth(self) -> float:
        return self.star_luminosity_lsun / self.semimajor_axis_au**2

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["period_days"] = self.period_days
        d["instellation_searth"] = self.instellation_searth
        return d


@dataclass
class PlanetObserved:
    """What an observer has: catalog-like values with errors, NaN when unknown. No atmosphere."""

    name: str
    system: str
    star_teff_k: float
    star_radius_rsun: float
    star_mass_msun: float
    star_luminosity_lsun: float
    star_age_gyr: float
    distance_pc: float
    star_jmag: float
    planet_radius_earth: float
    planet_mass_earth: float
    semimajor_axis_au: float
    period_days: float
    eccentricity: float
    instellation_searth: float
    equilibrium_temperature_k: float  # for Bond albedo 0.3, full redistribution
    n_transits: int
    discovery_method: str = "transit"

    def numeric_vector(self) -> np.ndarray:
        """OBSERVED_NUMERIC_FIELDS as float32, NaN where unknown."""
        return np.array([float(getattr(self, k)) for k in OBSERVED_NUMERIC_FIELDS], dtype=np.float32)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PlanetRun:
    """One simulated planet: four modalities (inputs an observer could have) and true labels.

    datacube_*: float32 [vars=2 (air_temperature K, specific_humidity kg/kg), time=12, lat, lon, lev]
    spectrum: float32 [n_wavelengths, 3] = (wavelength um, transit depth ppm, 1-sigma ppm), or None
    graph: torch_geometric.data.Data with x float32 [num_nodes, 64], edge_index int64 [2, num_edges]
    coords: lat_deg [lat], lon_deg [lon], sigma [lev] (p / p_surface), month [time]
    physics_features: float64 [4] in PHYSICS_FEATURES order (world/features.py), from the observed values
    """

    run_id: str
    system: str
    truth: PlanetTruth
    observed: PlanetObserved
    datacube_prior: np.ndarray
    datacube_true: np.ndarray
    spectrum: np.ndarray | None
    graph: Any
    text: str
    labels: dict[str, float]
    coords: dict[str, np.ndarray]
    physics_features: np.ndarray
    resolution: str = "demo"
    seed: int = 0
    extras: dict[str, Any] = field(default_factory=dict)  # diagnostics (runaway flag, ESI, HZ limits, ...)

    def modality_present(self) -> dict[str, bool]:
        """Whether each of MODALITIES is present (keys in that order)."""
        return {
            "datacube": self.datacube_prior is not None,
            "graph": self.graph is not None and int(self.graph.num_nodes) > 0,
            "spectrum": self.spectrum is not None,
            "text": bool(self.text and self.text.strip()),
        }


def dataclass_from_dict(cls, d: dict[str, Any]):
    """Rebuild a PlanetTruth/PlanetObserved from its to_dict(), ignoring derived keys."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


# PlanetTruth.source values, and the run-id prefix of each.
SOURCES = ("synthetic", "catalog", "solar_system", "user")
_RUN_ID_PREFIX = {"synthetic": "syn", "catalog": "cat", "solar_system": "sol", "user": "usr"}
# Sources whose names are unique by construction (synthetic names carry the full seed; the Solar
# System is a fixed list): their ids are the readable slug alone, as in stores written before ids
# carried a name hash.
_NAMES_UNIQUE_BY_CONSTRUCTION = ("synthetic", "solar_system")
NAME_HASH_CHARS = 8  # hex digits of SHA-256: 32 bits, collision-free in practice for catalogs of ~10^4 names


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()


def name_hash(name: str) -> str:
    """Short stable hash of the exact (UTF-8) name: `Kepler-999 b` and `Kepler 999 b` differ."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:NAME_HASH_CHARS]


def run_id_for(truth: PlanetTruth) -> str:
    """A stable, file-system-safe id, unique for distinct planets.

    Source prefix + ASCII slug of the name; catalog and user planets also carry `name_hash`, because
    slugging is lossy (`α Cen b` and `β Cen b` both slug to `cen-b`).
    """
    prefix = _RUN_ID_PREFIX.get(truth.source, "run")
    slug = _slug(truth.name)
    if truth.source in _NAMES_UNIQUE_BY_CONSTRUCTION:
        return f"{prefix}-{slug}"
    return f"{prefix}-{slug}-{name_hash(truth.name)}" if slug else f"{prefix}-{name_hash(truth.name)}"


def legacy_run_id_for(truth: PlanetTruth) -> str:
    """The id stores written before name hashes gave this planet (prefix + slug), to find old runs."""
    return f"{_RUN_ID_PREFIX.get(truth.source, 'run')}-{_slug(truth.name)}"


# ---------------------------------------------------------------- truth validation
_POSITIVE_FIELDS = ("star_radius_rsun", "star_mass_msun", "star_luminosity_lsun", "star_age_gyr", "distance_pc",
                    "planet_radius_earth", "planet_mass_earth", "semimajor_axis_au", "rotation_period_days")
# (field, lo, hi, unit): inclusive bounds of what the simulator models.
_BOUNDED_FIELDS = (
    ("star_activity", 0.0, 1.0, ""),
    ("star_jmag", -5.0, 30.0, "mag"),
    ("eccentricity", 0.0, 0.95, ""),
    ("obliquity_deg", 0.0, 180.0, "deg"),
    ("surface_pressure_bar", 0.0, 1000.0, "bar"),
    ("ocean_fraction", 0.0, 1.0, ""),
    ("surface_albedo", 0.0, 1.0, ""),
    ("cloud_top_pressure_bar", 0.0, 1000.0, "bar"),
)


def _number(field: str, value: Any) -> float:
    """`value` as float if it is a real number; a string such as "5.0" is an error, not a number."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputValidationError(field, value, f"a number (got {type(value).__name__})")
    return float(value)


def _text(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputValidationError(field, value, "a non-empty string")
    return value


def _integer(field: str, value: Any, lo: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < lo:
        raise InputValidationError(field, value, f"an integer >= {lo}")
    return int(value)


def _flag(field: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InputValidationError(field, value, "a bool")
    return bool(value)


def _check_composition(comp: Any) -> None:
    if not isinstance(comp, dict) or set(comp) != set(GASES):
        raise InputValidationError("composition", comp, f"a dict of VMRs over exactly {GASES}")
    for gas, v in comp.items():
        _number(f"composition[{gas}]", v)
    normalise(comp)  # ranges and the sum of trace gases


def validate_truth(t: PlanetTruth) -> None:
    """Raise InputValidationError naming the first field of `t` that is mistyped or unmodellable.

    Every field is checked: strings and enumerations, real numbers (strings are refused), finiteness,
    physical ranges the simulator models, flags, counts and the composition.
    """
    if not isinstance(t, PlanetTruth):
        raise InputValidationError("truth", type(t).__name__, "a PlanetTruth")
    _text("name", t.name)
    _text("system", t.system)
    if t.source not in SOURCES:
        raise InputValidationError("source", t.source, f"one of {SOURCES}")
    lo, hi = stars.TEFF_RANGE_K
    check_finite_range("star_teff_k", _number("star_teff_k", t.star_teff_k), lo, hi, "K")
    for name in _POSITIVE_FIELDS:
        v = check_finite_range(name, _number(name, getattr(t, name)))
        if v <= 0:
            raise InputValidationError(name, v, "a positive finite value")
    for name, lo, hi, unit in _BOUNDED_FIELDS:
        check_finite_range(name, _number(name, getattr(t, name)), lo, hi, unit)
    _flag("tidally_locked", t.tidally_locked)
    _flag("atmosphere_retained", t.atmosphere_retained)
    _check_composition(t.composition)
    if t.biosphere not in BIOSPHERES:
        raise InputValidationError("biosphere", t.biosphere, f"one of {BIOSPHERES}")
    _integer("n_transits", t.n_transits, 0)
    _text("discovery_method", t.discovery_method)
    _integer("discovery_year", t.discovery_year, 0)
    names = {f.name for f in fields(PlanetTruth)}
    if not isinstance(t.catalog_missing, (tuple, list)) or any(k not in names for k in t.catalog_missing):
        raise InputValidationError("catalog_missing", t.catalog_missing, "a tuple of PlanetTruth field names")

"""The records the world produces: the true planet, what an observer sees, and one planet run.

Units are in the field names (SI unless the name says otherwise). Missing observed values are NaN.
These dataclasses are the contract between world/, data/ and the models (docs/architecture.md).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

# Gases whose volume mixing ratios the true atmosphere carries (N2 is the balance gas).
GASES = ("N2", "O2", "CO2", "CH4", "H2O", "O3", "N2O", "CO", "H2")

# Biospheres a true planet can host. "none" = sterile or no detectable metabolism.
BIOSPHERES = ("none", "oxygenic", "methanogenic")

# habitability_class values (SPEC.md "Labels").
CLASS_NAMES = ("not_habitable", "habitable", "inhabited")

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
        from astrobio.constants import AU, DAY, G, M_SUN

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
    resolution: str = "demo"
    seed: int = 0
    extras: dict[str, Any] = field(default_factory=dict)  # diagnostics (runaway flag, ESI, HZ limits, ...)

    def modality_present(self) -> dict[str, bool]:
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

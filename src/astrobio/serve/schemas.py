"""Typed request and response models of the serve API (pydantic v2); the OpenAPI schema at /docs comes from them."""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field

MAX_PREDICT = 1000  # planets per POST /api/predict
MAX_LIMIT = 10000  # rows per GET /api/planets page (the whole shipped catalog fits in one)


class ErrorDetail(BaseModel):
    field: str = Field(description="the field at fault, e.g. 'query.limit' or 'body.0.planet_radius_rjup'")
    value: Any = Field(description="the value given")
    expected: str = Field(description="what was expected")


class ErrorResponse(BaseModel):
    error: ErrorDetail
    errors: list[ErrorDetail] = Field(default_factory=list, description="every problem found (first = error)")


class Health(BaseModel):
    status: str
    version: str
    run_id: str
    planets: int
    skipped: int


class HabitableZone(BaseModel):
    limits_au: dict[str, float] = Field(description="orbital distance of each Kopparapu et al. (2014) limit")
    position: Optional[float] = Field(description="0 at the runaway-greenhouse edge, 1 at the maximum-greenhouse edge")
    in_hz: Optional[bool]


class PlanetSummary(BaseModel):
    """A served planet: the columns `astrobio predict` writes, plus observed parameters and HZ position."""

    model_config = ConfigDict(extra="allow")
    name: str
    system: str
    run_id: str
    predicted_class: str
    p_not_habitable: float
    p_not_habitable_std: Optional[float]
    p_habitable: float
    p_habitable_std: Optional[float]
    p_inhabited: float
    p_inhabited_std: Optional[float]
    w_datacube: float
    w_graph: float
    w_spectrum: float
    w_text: float
    star_teff_k: Optional[float]
    instellation_searth: Optional[float]
    semimajor_axis_au: Optional[float]
    planet_radius_earth: Optional[float]
    planet_mass_earth: Optional[float]
    has_spectrum: bool
    hz: HabitableZone


class PlanetPage(BaseModel):
    total: int = Field(description="planets matching the filters")
    offset: int
    limit: int
    planets: list[PlanetSummary]


class SkippedPlanet(BaseModel):
    name: str
    reason: str


class PriorClimate(BaseModel):
    """Climate of the observed parameters under the observer's prior atmosphere (the model's datacube input)."""

    global_mean_surface_temperature_k: float
    min_surface_temperature_k: float
    max_surface_temperature_k: float
    liquid_water_fraction: float
    runaway_greenhouse: bool


class TemperatureMap(BaseModel):
    units: str = "K"
    lat_deg: list[float]
    lon_deg: list[float]
    months: list[list[list[float]]] = Field(description="12 monthly means, [month][lat][lon]")
    annual_mean: list[list[float]] = Field(description="mean of the 12 months, [lat][lon]")


class PlanetDetail(PlanetSummary):
    observed: dict[str, Any] = Field(description="what the observer has (null = unknown)")
    prior_climate: PriorClimate
    temperature_map: TemperatureMap
    observing_log: str
    spectrum: Optional[list[list[float]]] = Field(description="rows of (wavelength um, depth ppm, sigma ppm)")


class CatalogPlanet(BaseModel):
    """A planet described with the columns of the shipped catalog CSV (units in the names; null = unknown)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_max_length=200)
    name: str = Field(min_length=1, examples=["Kepler-442 b"])
    system: Optional[str] = None
    star_name: Optional[str] = Field(None, examples=["Kepler-442"])
    star_teff_k: Optional[float] = Field(None, gt=0, examples=[4402])
    star_radius_rsun: Optional[float] = Field(None, gt=0, examples=[0.598])
    star_mass_msun: Optional[float] = Field(None, gt=0, examples=[0.609])
    star_metallicity: Optional[float] = Field(None, ge=-5, le=2)
    star_spectral_type: Optional[str] = None
    star_age_gyr: Optional[float] = Field(None, ge=0, le=14)
    distance_pc: Optional[float] = Field(None, gt=0)
    planet_mass_mjup: Optional[float] = Field(None, gt=0)
    planet_radius_rjup: Optional[float] = Field(None, gt=0, examples=[0.12])
    period_days: Optional[float] = Field(None, gt=0, examples=[112.3053])
    semimajor_axis_au: Optional[float] = Field(None, gt=0, examples=[0.409])
    eccentricity: Optional[float] = Field(None, ge=0, lt=1)
    inclination_deg: Optional[float] = Field(None, ge=0, le=180)
    planet_teq_k: Optional[float] = Field(None, gt=0)
    discovery_method: Optional[str] = None
    discovery_year: Optional[int] = Field(None, ge=1900, le=2100)
    list: Optional[str] = None

    def catalog_row(self) -> dict[str, str]:
        """The planet as a catalog CSV row (strings; '' = unknown), as the catalog reader takes it."""
        row = {k: ("" if v is None else repr(v) if isinstance(v, float) else str(v))
               for k, v in self.model_dump().items()}
        row["system"] = row["system"] or self.name
        return row


class PredictedPlanet(BaseModel):
    """`prediction` when the simulator can model the planet, else `error` with the reason."""

    name: str
    modelled: bool
    prediction: Optional[dict[str, Any]] = None
    error: Optional[ErrorDetail] = None


class PredictResponse(BaseModel):
    seed: int
    mc_samples: int
    results: list[PredictedPlanet]


class DiagramPoints(BaseModel):
    """Every served planet as columns of what the habitable-zone diagram draws (null = unknown)."""

    name: list[str]
    instellation_searth: list[Optional[float]]
    star_teff_k: list[Optional[float]]
    p_habitable: list[float]

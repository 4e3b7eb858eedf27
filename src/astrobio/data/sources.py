"""Registry of data sources, and a client for the NASA Exoplanet Archive TAP service.

Offline by default: the shipped Open Exoplanet Catalogue snapshot and the simulator need no network.
`NasaExoplanetArchiveClient` queries the archive's `pscomppars` table (one composite row per confirmed
planet) through TAP with an ADQL query and maps the CSV onto the shipped catalog's columns, so
`astrobio.world.catalog.catalog_planets(path)` ingests the result like the shipped CSV.
"""

from __future__ import annotations

import csv
import io
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable

from astrobio.errors import AstrobioError, InputValidationError
from astrobio.io import atomic_write

NASA_TAP_URL = "https://exoplanetarchive.ipac.caltech.edu/TAP/sync"

# pscomppars columns we request (names as the archive defines them), and their catalog-CSV column.
PSCOMPPARS_TO_CATALOG = {
    "pl_name": "name",
    "hostname": "star_name",
    "st_teff": "star_teff_k",
    "st_rad": "star_radius_rsun",
    "st_mass": "star_mass_msun",
    "st_met": "star_metallicity",
    "st_spectype": "star_spectral_type",
    "st_age": "star_age_gyr",
    "sy_dist": "distance_pc",
    "pl_bmassj": "planet_mass_mjup",  # best mass: true mass, or m sin i for RV-only planets
    "pl_radj": "planet_radius_rjup",
    "pl_orbper": "period_days",
    "pl_orbsmax": "semimajor_axis_au",
    "pl_orbeccen": "eccentricity",
    "pl_orbincl": "inclination_deg",
    "pl_eqt": "planet_teq_k",
    "discoverymethod": "discovery_method",
    "disc_year": "discovery_year",
}
PSCOMPPARS_COLUMNS = tuple(PSCOMPPARS_TO_CATALOG)

# Columns of the shipped catalog CSV (resources/catalog/README.md), in file order.
CATALOG_COLUMNS = ("name", "system", "star_name", "star_teff_k", "star_radius_rsun", "star_mass_msun",
                   "star_metallicity", "star_spectral_type", "star_age_gyr", "distance_pc", "planet_mass_mjup",
                   "planet_radius_rjup", "period_days", "semimajor_axis_au", "eccentricity", "inclination_deg",
                   "planet_teq_k", "discovery_method", "discovery_year", "list")

# Archive discovery methods → the Open Exoplanet Catalogue's vocabulary used by the shipped CSV.
DISCOVERY_METHODS = {
    "Transit": "transit", "Radial Velocity": "RV", "Microlensing": "microlensing", "Imaging": "imaging",
    "Transit Timing Variations": "timing", "Eclipse Timing Variations": "timing", "Pulsar Timing": "timing",
    "Pulsation Timing Variations": "timing", "Astrometry": "astrometry", "Disk Kinematics": "disk kinematics",
    "Orbital Brightness Modulation": "orbital brightness modulation",
}

Opener = Callable[..., Any]  # urllib.request.urlopen-like: opener(request, timeout=...) → response


class SourceUnavailableError(AstrobioError):
    """An online data source could not be reached (offline, timeout, HTTP error)."""


class SourceFormatError(AstrobioError):
    """A data source answered with something that is not the expected table."""


@dataclass(frozen=True)
class DataSource:
    """One place planets come from."""

    name: str
    kind: str  # "catalog" (shipped file) | "simulator" | "online_catalog"
    description: str
    provenance: str  # where the data come from (repository + commit, service URL, code)
    licence: str
    citation: str
    location: str  # file path or URL
    online: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def shipped_catalog_path() -> Path:
    return Path(str(resources.files("astrobio.resources") / "catalog" / "exoplanets_oec.csv"))


def list_sources() -> list[DataSource]:
    """Every registered source (offline ones first)."""
    return [
        DataSource(
            name="open_exoplanet_catalogue", kind="catalog",
            description="5,288 confirmed exoplanets (shipped CSV, one row per planet)",
            provenance="github.com/OpenExoplanetCatalogue/open_exoplanet_catalogue, commit "
                       "a858d464b26038601b088837d663b5f8f2fb9a11 (systems/*.xml, 'Confirmed planets')",
            licence="MIT-style licence, copyright (C) 2012 Hanno Rein; keep the notice with copies",
            citation="Rein, H. 2012, arXiv:1211.7121 (Open Exoplanet Catalogue)",
            location=str(shipped_catalog_path())),
        DataSource(
            name="synthetic_population", kind="simulator",
            description="planets drawn by astrobio.world.simulate.sample_population(n, seed) and simulated "
                        "by astrobio.world.simulate",
            provenance="astrobio world simulator (this package); reproducible from the seed",
            licence="MIT (astrobio)", citation="astrobio, this package (see SPEC.md for the physics references)",
            location="astrobio.world.simulate.sample_population"),
        DataSource(
            name="solar_system", kind="simulator",
            description="Earth, Venus and Mars as sanity anchors (astrobio.world.catalog.solar_system_planet)",
            provenance="NASA planetary fact sheets (Williams 2024), NOAA greenhouse-gas records",
            licence="public domain (NASA)", citation="Williams, D. R. 2024, NASA Planetary Fact Sheets",
            location="astrobio.world.catalog.solar_system_planet"),
        DataSource(
            name="nasa_exoplanet_archive", kind="online_catalog",
            description="Planetary Systems Composite Parameters (pscomppars) through TAP/ADQL, CSV",
            provenance=f"NASA Exoplanet Archive TAP service {NASA_TAP_URL}, table pscomppars",
            licence="NASA Exoplanet Archive data are free to use with the archive's acknowledgement",
            citation="Akeson, R. L. et al. 2013, PASP 125, 989; PSCompPars DOI 10.26133/NEA13",
            location=NASA_TAP_URL, online=True),
    ]


def get_source(name: str) -> DataSource:
    sources = {s.name: s for s in list_sources()}
    if name not in sources:
        raise InputValidationError("source", name, f"one of {sorted(sources)}")
    return sources[name]


def pscomppars_query(where: str | None = None, limit: int | None = None) -> str:
    """ADQL selecting PSCOMPPARS_COLUMNS from pscomppars, optionally filtered and limited."""
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise InputValidationError("limit", limit, "a positive integer or None")
    if where is not None and ";" in where:
        raise InputValidationError("where", where, "one ADQL condition without ';'")
    top = f"TOP {limit} " if limit else ""
    cond = f" WHERE {where}" if where else ""
    return f"SELECT {top}{', '.join(PSCOMPPARS_COLUMNS)} FROM pscomppars{cond} ORDER BY pl_name"


def parse_pscomppars_csv(text: str) -> list[dict[str, str]]:
    """A pscomppars CSV answer as rows with the shipped catalog's columns (values kept verbatim)."""
    if text.lstrip().startswith("<"):  # TAP reports query errors as a VOTable document
        raise SourceFormatError(f"the archive answered with an error document, not CSV: {text.strip()[:300]}")
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in PSCOMPPARS_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise SourceFormatError(f"pscomppars CSV lacks columns {missing} (header: {reader.fieldnames})")
    rows = []
    for rec in reader:
        row = {PSCOMPPARS_TO_CATALOG[c]: (rec[c] or "").strip() for c in PSCOMPPARS_COLUMNS}
        if not row["name"]:
            raise SourceFormatError(f"pscomppars row without pl_name: {rec}")
        row["system"] = row["star_name"]
        row["discovery_method"] = DISCOVERY_METHODS.get(row["discovery_method"], row["discovery_method"].lower())
        row["list"] = "Confirmed planets"  # pscomppars holds confirmed planets only
        rows.append({c: row[c] for c in CATALOG_COLUMNS})
    return rows


def write_catalog_csv(rows: Iterable[dict[str, str]], path: str | os.PathLike) -> Path:
    """Write catalog rows (CATALOG_COLUMNS) atomically; the file reads like the shipped catalog."""
    path = Path(path)
    with atomic_write(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CATALOG_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


class NasaExoplanetArchiveClient:
    """TAP client for pscomppars. `opener` defaults to urllib's urlopen (inject one to test offline)."""

    def __init__(self, url: str = NASA_TAP_URL, timeout_s: float = 60.0, opener: Opener | None = None):
        if not timeout_s > 0:
            raise InputValidationError("timeout_s", timeout_s, "> 0 seconds")
        self.url, self.timeout_s = url, timeout_s
        self._open = opener or urllib.request.urlopen

    def request(self, query: str) -> urllib.request.Request:
        params = urllib.parse.urlencode({"query": query, "format": "csv"})
        return urllib.request.Request(f"{self.url}?{params}", headers={"User-Agent": "astrobio"})

    def fetch_csv(self, query: str) -> str:
        """Run an ADQL query synchronously; raise SourceUnavailableError when the service is unreachable."""
        try:
            with self._open(self.request(query), timeout=self.timeout_s) as resp:
                return resp.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            body = exc.read().decode("utf-8", "replace")[:300] if exc.fp else ""
            raise SourceUnavailableError(f"NASA Exoplanet Archive TAP at {self.url} answered HTTP {exc.code} "
                                         f"({exc.reason}) to the query {query!r}: {body}") from exc
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SourceUnavailableError(
                f"cannot reach the NASA Exoplanet Archive TAP service at {self.url} ({reason}); "
                "this machine looks offline: use the shipped catalog (source 'open_exoplanet_catalogue') "
                "or a catalog CSV saved earlier") from exc

    def fetch_planets(self, where: str | None = None, limit: int | None = None) -> list[dict[str, str]]:
        """pscomppars planets as catalog rows (see parse_pscomppars_csv)."""
        return parse_pscomppars_csv(self.fetch_csv(pscomppars_query(where, limit)))


__all__ = ["DataSource", "list_sources", "get_source", "NasaExoplanetArchiveClient", "pscomppars_query",
           "parse_pscomppars_csv", "write_catalog_csv", "shipped_catalog_path", "SourceUnavailableError",
           "SourceFormatError", "NASA_TAP_URL", "PSCOMPPARS_COLUMNS", "CATALOG_COLUMNS"]

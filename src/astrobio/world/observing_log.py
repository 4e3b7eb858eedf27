"""The observing log: a short natural-language record per planet (the text modality).

It carries what an observer writes down and what no other modality holds: stellar flares and magnetic
activity, age indicators, and the team's qualitative (sometimes wrong) spectral claims. Host star,
discovery and campaign come from the observed values (for catalog planets, from the catalog row).
Every random choice (template, synonym, order, number format, measurement noise) comes from `rng`,
so the same seed gives the same text.

Activity index a = LogFacts.star_activity in [0, 1] maps to observables (assumed log-linear mappings
between published end points; each reading gets measurement noise):
| quantity | mapping | anchors |
|---|---|---|
| flares >= 1e33 erg per year | log10 N = -2.75 + 5.3 a | Sun-like stars ~1 per 560 yr (Okamoto et al. 2021, ApJ 906:72); most active TESS M dwarfs ~1 per day (Günther et al. 2020, AJ 159:60) |
| flares >= 1e32 erg | 10x the rate above | cumulative flare-frequency slope -1 (alpha ~ 2; Hawley et al. 2014, ApJ 797:121) |
| log10 L_X / L_bol | -6.5 + 3.37 a (+-0.2 dex) | saturation at -3.13 (Wright et al. 2011, ApJ 743:48); Sun ~ -6.3 |
| log R'HK (F, G, K) | -5.1 + 1.2 a (+-0.05 dex) | active above -4.75 (Henry et al. 1996, AJ 111:439) |
| H-alpha emission (M) | a > 0.4 | dMe stars (West et al. 2008, AJ 135:785) |
Flares are counted in 1–4 TESS sectors (27.4 d each) as a Poisson draw, so quiet stars show none.

Spectral claims (only with transmission spectroscopy) follow the observer's retrieval of the noisy spectrum
(`observation.SpectrumReading`): a gas whose absorption the retrieval finds at >= 5 sigma is "detected",
3-5 sigma is "tentative", below 3 sigma nothing is said (at most two claims, most significant first).
"Flat spectrum, thin or absent atmosphere" is written only when no gas reaches 3 sigma, a flat line fits
the spectrum and a clear 1-bar prior atmosphere would have stood out at >= 5 sigma; otherwise a
featureless spectrum is "no feature at the current precision". Claims name gases, never the class.

The log never sees the true planet: `observing_log(observed, facts, reading, rng)` gets the observed values,
the spectrum's reading and `LogFacts`, the few things a real observing log records that the catalog table
does not (activity, age indicators, the discovery year, where the target comes from).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from astrobio.errors import InputValidationError
from astrobio.world.observation import DETECTED_SIGMA, SpectrumReading
from astrobio.world.types import PlanetObserved, PlanetTruth

PC_TO_LY = 3.26156  # light-years per parsec (IAU 2015 parsec, Julian year)
TESS_SECTOR_DAYS = 27.4
P_VAGUE_AGE = 0.25  # age hint reduced to "poorly constrained"
P_NO_AGE = 0.15
AGE_SCATTER_DEX = 0.13  # ~30% age uncertainty, as observation.OBS_SIGMA["age_frac"]
MAX_CLAIMS = 2

GAS_NAMES = {"CO2": ("CO2", "carbon dioxide"), "CH4": ("CH4", "methane"), "H2O": ("H2O", "water vapour"),
             "O3": ("O3", "ozone"), "O2": ("O2", "oxygen")}
GAS_BANDS = {"CO2": "4.3 um", "CH4": "3.3 um", "H2O": "1.4 um", "O3": "9.6 um", "O2": "0.76 um"}

# Dwarf spectral types and Teff (K), Pecaut & Mamajek 2013, ApJS 208:9 (online table, 2022 version).
SPECTRAL_TYPES = (("A5", 8100), ("F0", 7220), ("F2", 6810), ("F5", 6510), ("F8", 6170), ("G0", 5920),
                  ("G2", 5770), ("G5", 5660), ("G8", 5490), ("K0", 5280), ("K2", 5040), ("K3", 4830),
                  ("K4", 4600), ("K5", 4410), ("K7", 4070), ("M0", 3850), ("M1", 3660), ("M2", 3560),
                  ("M3", 3430), ("M4", 3210), ("M5", 3060), ("M6", 2810), ("M7", 2680), ("M8", 2570),
                  ("M9", 2380))

METHOD_PHRASES = {
    "transit": ("the transit method", "transit photometry", "a transit survey"),
    "RV": ("radial velocities", "the radial-velocity method", "Doppler spectroscopy"),
    "imaging": ("direct imaging", "high-contrast imaging"),
    "microlensing": ("gravitational microlensing", "a microlensing event"),
    "timing": ("timing variations", "transit-timing variations"),
    "astrometry": ("astrometry",),
}


def spectral_type(teff_k: float) -> str:
    """Dwarf spectral type (e.g. 'M4V') nearest in Teff (Pecaut & Mamajek 2013); '' when Teff is unknown."""
    if not _finite(teff_k):
        return ""
    return min(SPECTRAL_TYPES, key=lambda st: abs(st[1] - teff_k))[0] + "V"


def superflare_rate_per_year(activity: float, min_energy_erg: float = 1e33) -> float:
    """Flares per year above `min_energy_erg` (1e32 or 1e33) for activity index a (module table)."""
    rate = 10 ** (-2.75 + 5.3 * activity)
    return rate * 10 ** (math.log10(1e33) - math.log10(min_energy_erg))


@dataclass(frozen=True)
class LogFacts:
    """What an observing log records beyond the catalog table: where the target comes from ("synthetic",
    "catalog", "solar_system"), the discovery year, the star's activity index (flares, X-rays, H-alpha,
    R'HK are its readings) and its age (age indicators are its readings, with their scatter)."""

    source: str
    discovery_year: int
    star_activity: float
    star_age_gyr: float


def log_facts(truth: PlanetTruth) -> LogFacts:
    """The facts of `truth` an observing log may hold (nothing about the atmosphere, surface or life)."""
    return LogFacts(truth.source, int(truth.discovery_year), float(truth.star_activity), float(truth.star_age_gyr))


def observing_log(observed: PlanetObserved, facts: LogFacts, reading: SpectrumReading,
                  rng: np.random.Generator) -> str:
    """3–8 sentences about the planet's host, discovery, campaign, activity, age and spectral claims."""
    if not isinstance(observed, PlanetObserved) or not isinstance(facts, LogFacts) \
            or not isinstance(reading, SpectrumReading):
        raise InputValidationError("observed/facts/reading", (type(observed).__name__, type(facts).__name__,
                                                              type(reading).__name__),
                                   "a PlanetObserved, a LogFacts and a SpectrumReading")
    if not isinstance(rng, np.random.Generator):
        raise InputValidationError("rng", type(rng).__name__, "a numpy.random.Generator")
    w = _Writer(rng)
    head = [_host_sentence(w, observed, facts), _discovery_sentence(w, observed, facts)]
    body = [s for s in (_campaign_sentence(w, observed), *_activity_sentences(w, observed, facts),
                        _age_sentence(w, observed, facts), *_claim_sentences(w, observed, reading)) if s]
    planet = _planet_sentence(w, observed)
    if planet and len(head) + len(body) < 8:  # at most 2 + 1 + 2 + 1 + 2 = 8 without it
        body.append(planet)
    body = [body[i] for i in rng.permutation(len(body))]
    if w.coin(0.5):  # sometimes the discovery follows the rest of the record
        head, body = head[:1], body + head[1:]
    return " ".join(_capitalise(s) for s in head + body)


class _Writer:
    """Random choices for phrasing."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def pick(self, options):
        return options[int(self.rng.integers(len(options)))]

    def coin(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def number(self, value: float, unit_options) -> str:
        fmt = self.pick(("{:.1f}", "{:.2f}", "{:.3g}", "~{:.1f}") if value < 1000 else ("{:.0f}", "{:,.0f}"))
        return fmt.format(value) + " " + self.pick(unit_options)


def _finite(x) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _capitalise(s: str) -> str:
    s = s.strip()
    s = s[0].upper() + s[1:]
    return s if s.endswith(".") else s + "."


@lru_cache(maxsize=1)
def _catalog_stars() -> dict[str, tuple[str, str]]:
    """planet name -> (star name, catalog spectral type) from the shipped Open Exoplanet Catalogue CSV."""
    path = resources.files("astrobio.resources") / "catalog" / "exoplanets_oec.csv"
    with open(path, newline="", encoding="utf-8") as fh:
        return {r["name"]: (r.get("star_name") or r.get("system") or "", (r.get("star_spectral_type") or "").strip())
                for r in csv.DictReader(fh)}


def _host_sentence(w: _Writer, obs: PlanetObserved, facts: LogFacts) -> str:
    if facts.source == "solar_system":
        star, sptype = "the Sun", "G2V"
    elif facts.source == "catalog":
        star, catalog_type = _catalog_stars().get(obs.name, (obs.system, ""))
        star = star or obs.system
        sptype = catalog_type or spectral_type(obs.star_teff_k)
    else:
        star, sptype = obs.system, spectral_type(obs.star_teff_k)
    dist = obs.distance_pc
    kind = _star_kind(sptype)
    where = ""
    if _finite(dist):
        where = w.pick((f" at {w.number(dist, ('pc', 'parsecs'))}",
                        f" some {dist * PC_TO_LY:.0f} light-years away",
                        f" at a distance of {dist:.1f} pc"))
    typed = f"{'an' if sptype[:1] in 'AEFHILMNORSX' else 'a'} {sptype} {kind}" if sptype else "a star of unknown type"
    source = " (Open Exoplanet Catalogue entry)" if facts.source == "catalog" else ""
    templates = [f"{obs.name}{source} orbits {star}, {typed}{where}",
                 f"target {obs.name}{source}: host {star}, {typed}{where}",
                 f"{star}, {typed}{where}, hosts {obs.name}{source}"]
    if not star.startswith("the "):
        templates.append(f"host star {star} is {typed}{where}; the planet is {obs.name}{source}")
    return w.pick(templates)


def _star_kind(sptype: str) -> str:
    if sptype.startswith("M"):
        return "red dwarf" if "III" not in sptype else "red giant"
    if sptype.startswith("K"):
        return "orange dwarf" if "III" not in sptype else "giant"
    return "star"


def _discovery_sentence(w: _Writer, obs: PlanetObserved, facts: LogFacts) -> str:
    method = obs.discovery_method or ""
    how = w.pick(METHOD_PHRASES[method]) if method in METHOD_PHRASES else (
        "" if method in ("", "unknown") else method)
    year = facts.discovery_year if facts.discovery_year and facts.discovery_year > 0 else None
    if facts.source == "solar_system":
        return w.pick(("the planet is a Solar System reference target, seen as if from 10 pc",
                       "this is a Solar System benchmark viewed as an exoplanet"))
    if not how:
        return f"the catalog lists its discovery in {year}" if year else "the discovery method is not recorded"
    if year is None:
        return w.pick((f"it was found by {how}", f"discovery was by {how}"))
    return w.pick((f"it was discovered by {how} in {year}", f"discovery: {how}, {year}",
                   f"first reported in {year} from {how}", f"the {year} discovery used {how}"))


def _planet_sentence(w: _Writer, obs: PlanetObserved) -> str:
    parts = []
    if _finite(obs.planet_radius_earth):
        parts.append(f"radius {w.number(obs.planet_radius_earth, ('Earth radii', 'R_earth'))}")
    if _finite(obs.planet_mass_earth):
        parts.append(f"mass {w.number(obs.planet_mass_earth, ('Earth masses', 'M_earth'))}")
    if _finite(obs.period_days):
        parts.append(f"period {w.number(obs.period_days, ('days', 'd'))}")
    if _finite(obs.instellation_searth):
        parts.append(f"instellation {obs.instellation_searth:.2f} times Earth's")
    if not parts or w.coin(0.35):
        return ""
    if not _finite(obs.planet_mass_earth) and w.coin(0.5):
        parts.append("no mass measurement yet")
    return w.pick(("measured " + ", ".join(parts), "the planet has " + ", ".join(parts),
                   "fitted parameters: " + "; ".join(parts)))


def _campaign_sentence(w: _Writer, obs: PlanetObserved) -> str:
    n = int(obs.n_transits)
    if n <= 0:
        if obs.discovery_method != "transit":
            return w.pick(("the planet does not transit, so no transmission spectroscopy is possible",
                           "no transits are known, hence no transmission spectrum",
                           "without transits, only the host star has been observed spectroscopically"))
        return w.pick(("no transmission spectroscopy has been obtained yet",
                       "no JWST transit observations exist so far",
                       "transmission spectroscopy is still pending",
                       "the planet has not been scheduled for transmission spectroscopy"))
    prism = max(1, n // 2) if n > 1 else 1
    miri = n - prism
    instruments = (f"JWST NIRSpec PRISM ({prism}) and MIRI LRS ({miri})" if miri else "JWST NIRSpec PRISM")
    return w.pick((f"{n} transit{'s' if n > 1 else ''} were observed with {instruments}",
                   f"the JWST campaign stacked {n} transit{'s' if n > 1 else ''} ({instruments})",
                   f"transmission spectroscopy: {n} transit{'s' if n > 1 else ''}, {instruments}, 0.6-12 um",
                   f"a {n}-transit programme used {instruments}"))


def _activity_sentences(w: _Writer, obs: PlanetObserved, facts: LogFacts) -> list[str]:
    a = float(np.clip(facts.star_activity, 0.0, 1.0)) if _finite(facts.star_activity) else 0.0
    sptype = spectral_type(obs.star_teff_k)
    if a < 0.25 and w.coin(0.4):  # quiet stars are often not commented on
        return []
    sectors = int(w.pick((1, 1, 2, 4)))
    days = sectors * TESS_SECTOR_DAYS
    n_flares = int(w.rng.poisson(superflare_rate_per_year(a, 1e32) * days / 365.25))
    out = [_flare_sentence(w, n_flares, sectors, days, a)]
    if a >= 0.25 or w.coin(0.3):
        out.append(_chromosphere_sentence(w, a, sptype))
    return out


def _flare_sentence(w: _Writer, n: int, sectors: int, days: float, a: float) -> str:
    span, verb = w.pick(((f"{sectors} TESS sector{'s' if sectors > 1 else ''}", "s" if sectors == 1 else ""),
                         (f"{days:.0f} days of TESS photometry", "")))
    if n == 0:
        return w.pick((f"no flares above 1e32 erg were seen in {span}; the star is photometrically quiet",
                       f"the light curve is quiet: no flares in {span}",
                       f"{span} show{verb} no flaring"))
    rate = n / days
    level = "superflares" if a >= 0.6 else "flares"
    return w.pick((f"{n} {level} above 1e32 erg were detected in {span}",
                   f"the host flares {'frequently' if rate > 0.1 else 'now and then'}: {n} event{'s' if n > 1 else ''}"
                   f" in {span} ({rate:.2f} per day)",
                   f"{span} contain{verb} {n} strong flare{'s' if n > 1 else ''}",
                   f"frequent {level} ({n} in {span}) point to an active host" if n > 2 else
                   f"occasional flaring ({n} in {span})"))


def _chromosphere_sentence(w: _Writer, a: float, sptype: str) -> str:
    log_rx = min(-6.5 + 3.37 * a, -3.13) + w.rng.normal(0, 0.2)
    if w.coin(0.5):
        level = "saturated" if log_rx > -3.5 else "strong" if log_rx > -4.5 else "weak" if log_rx < -5.5 \
            else "moderate"
        return w.pick((f"X-ray emission is {level} (log L_X/L_bol = {log_rx:.1f})",
                       f"{level} coronal X-ray and UV emission, L_X/L_bol ~ 1e{log_rx:.0f}",
                       f"XMM-Newton finds {level} X-ray activity"))
    if sptype.startswith("M"):
        if a > 0.4:
            return w.pick(("H-alpha is in emission (a dMe star)", "strong H-alpha emission marks an active M dwarf",
                           "chromospheric H-alpha emission is present"))
        return w.pick(("H-alpha is in absorption, as in inactive M dwarfs", "no H-alpha emission is seen"))
    rhk = -5.1 + 1.2 * a + w.rng.normal(0, 0.05)
    word = "active" if rhk > -4.75 else "inactive"
    return w.pick((f"Ca II H&K gives log R'HK = {rhk:.2f} ({word})",
                   f"the chromosphere is {word} (log R'HK {rhk:.2f})"))


def _age_sentence(w: _Writer, obs: PlanetObserved, facts: LogFacts) -> str:
    if w.coin(P_NO_AGE):
        return ""
    if facts.source == "catalog" and not _finite(obs.star_age_gyr):
        return w.pick(("the catalog gives no stellar age", "no age estimate is listed for the host"))
    if not _finite(facts.star_age_gyr) or w.coin(P_VAGUE_AGE):
        return w.pick(("the stellar age is poorly constrained", "age indicators are inconclusive",
                       "the host's age remains uncertain"))
    age = facts.star_age_gyr if facts.source != "synthetic" else \
        facts.star_age_gyr * 10 ** w.rng.normal(0, AGE_SCATTER_DEX)
    m_dwarf = spectral_type(obs.star_teff_k).startswith("M")
    if age < 1.0:
        return w.pick((("fast rotation and membership in a young moving group suggest an age below 1 Gyr"
                        if m_dwarf else "lithium depletion suggests youth (< 1 Gyr)"),
                       f"a young system, about {age * 1000:.0f} Myr old",
                       "rapid rotation marks a young star"))
    if age > 8.0:
        return w.pick(("a kinematically old thick-disk star", "its space velocity points to an old, thick-disk host",
                       f"slow rotation and low activity suggest an age of about {age:.0f} Gyr"))
    return w.pick((f"gyrochronology gives an age of {age:.1f} +- {0.3 * age:.1f} Gyr",
                   f"an intermediate-age thin-disk star (~{age:.0f} Gyr)",
                   f"the estimated age is {age:.1f} Gyr"))


def _claim_sentences(w: _Writer, obs: PlanetObserved, reading: SpectrumReading) -> list[str]:
    if int(obs.n_transits) <= 0 or not reading.detection_sigma:  # no spectrum, nothing to claim
        return []
    out = []
    for gas, sigma in reading.claims()[:MAX_CLAIMS]:
        label = w.pick(GAS_NAMES[gas])
        band = GAS_BANDS[gas]
        if sigma >= DETECTED_SIGMA:
            out.append(w.pick((f"the team reports {label} absorption near {band} at {sigma:.0f} sigma",
                               f"a {label} feature at {band} is detected ({sigma:.1f} sigma)",
                               f"{label} is seen at {band}, a {sigma:.0f}-sigma detection")))
        else:
            out.append(w.pick((f"the team reports a tentative detection of {label} ({sigma:.1f} sigma)",
                               f"there are hints of {label} near {band}, at low significance",
                               f"a possible {label} signal ({sigma:.1f} sigma) is under discussion")))
    if out:
        return out
    if reading.flat_excludes_clear_atmosphere:
        excl = reading.clear_atmosphere_sigma
        return [w.pick((f"the spectrum is flat, consistent with a thin or absent atmosphere (a clear 1-bar "
                        f"atmosphere is excluded at {excl:.0f} sigma)",
                        f"no atmospheric features; a clear 1-bar atmosphere would have shown them at "
                        f"{excl:.0f} sigma, so a bare rock or high clouds are likely"))]
    return [w.pick(("no molecular feature is detected at the current precision",
                    "the spectrum shows no significant features"))]

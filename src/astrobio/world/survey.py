"""The synthetic survey: true planets drawn from a stated survey design, and the biospheres life gives them.

The survey is M-dwarf heavy (as transit surveys of temperate rocky planets are, e.g. TESS/ground-based
M-dwarf programmes) and spans planets inside, in and outside the habitable zone. Every planet is drawn
from its own generator `default_rng([seed, system_index, planet_index])`, so a run is identical whatever
the batch or worker that simulates it.

How much transmission spectroscopy each planet gets is a choice, `SurveyDesign` (`SURVEYS`):
- `jwst` (default): today's kind of programme, 0-50 JWST transits per planet (two planets in seven get
  none) and a 15 ppm per-bin noise floor (`spectrum.SpectrumConfig`).
- `future`: a stated next-generation design (an assumption, not a mission's specification): every
  transiting planet gets 5-100 transits, nearby M dwarfs (<= 20 pc, where temperate planets transit
  often and deep) 20-200, and the floor is 5 ppm. It makes CH4/CO2 biospheres around M dwarfs
  detectable more often; biogenic O3 still needs the longest programmes (Lustig-Yaeger et al. 2019).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, replace

import numpy as np

from astrobio.errors import InputValidationError, choose
from astrobio.world import atmosphere, habitable, labels, metabolism, orbits, planets, spectrum, stars
from astrobio.world.types import PlanetTruth

# --- synthetic survey design (documented choices, not measurements) ---
SPECTRAL_MIX = (("M", 0.55, 2700.0, 3900.0), ("K", 0.25, 3900.0, 5300.0), ("GF", 0.20, 5300.0, 7000.0))
# Survey design in x = S_eff / S_runaway(Teff): (share, low, high); log-uniform inside each range.
HZ_POSITION_MIX = ((0.20, 0.2, 0.62), (0.65, 0.62, 1.0), (0.15, 1.0, 2.5))  # outer, in, inner
CO2_FEEDBACK_DEX = 3.5  # rise of log10 CO2 from the inner edge to x = 0.6 (tuned to the EBM's outer edge)
RADIUS_RANGE_EARTH = (0.5, 1.8)  # rocky planets below the Fulton et al. (2017) radius gap
P_LIFE_IF_VIABLE = 0.55  # chance that life arose where a metabolism is viable (an assumption, stated)
ABIOTIC_O2_FALSE_POSITIVE = 0.08  # M-dwarf planets with abiotic O2 from early water loss (Luger & Barnes 2015)
M_DWARF_MAX_TEFF_K = 3900.0  # M/K boundary (Pecaut & Mamajek 2013)


@dataclass(frozen=True)
class SurveyDesign:
    """How many transits of transmission spectroscopy a planet gets, and the instrument's noise floor."""

    name: str
    transit_choices: tuple[int, ...]  # drawn uniformly per planet (0 = no spectrum)
    nearby_m_dwarf_transit_choices: tuple[int, ...]  # the same, for M dwarfs within `nearby_pc`
    nearby_pc: float
    noise_floor_ppm: float  # per-bin systematic floor that does not average down

    def transits(self, rng: np.random.Generator, star: dict) -> int:
        nearby_m = star["star_teff_k"] < M_DWARF_MAX_TEFF_K and star["distance_pc"] <= self.nearby_pc
        return int(rng.choice(self.nearby_m_dwarf_transit_choices if nearby_m else self.transit_choices))

    def spectrum_config(self) -> spectrum.SpectrumConfig:
        return spectrum.SpectrumConfig(noise_floor_ppm=self.noise_floor_ppm)


_JWST_TRANSITS = (0, 0, 3, 5, 10, 20, 50)
SURVEYS = {
    "jwst": SurveyDesign("jwst", _JWST_TRANSITS, _JWST_TRANSITS, 20.0, spectrum.SpectrumConfig.noise_floor_ppm),
    "future": SurveyDesign("future", (5, 10, 20, 50, 100), (20, 50, 100, 200), 20.0, 5.0),
}
DEFAULT_SURVEY = "jwst"


def survey_design(name: str) -> SurveyDesign:
    """The named design, or InputValidationError naming the allowed ones."""
    return choose("survey", name, SURVEYS)


def _draw_star(rng: np.random.Generator) -> dict:
    u = rng.random()
    cum = 0.0
    for _, p, lo, hi in SPECTRAL_MIX:
        cum += p
        if u <= cum:
            teff = rng.uniform(lo, hi)
            break
    ms = stars.main_sequence_from_teff(np.array([teff]))
    age = rng.uniform(0.5, 10.0)
    # Activity lifetime grows toward late M dwarfs (West et al. 2008: ~1 Gyr early M, ~8 Gyr late M).
    tau_gyr = float(np.interp(teff, [2700, 3500, 4000, 5000, 7000], [8.0, 4.0, 1.5, 1.0, 0.8]))
    activity = float(np.clip(math.exp(-age / tau_gyr) + rng.normal(0, 0.08), 0.0, 1.0))
    distance = float(10 ** rng.uniform(math.log10(5.0), math.log10(80.0)))
    lum = float(ms["luminosity_lsun"][0])
    return {
        "star_teff_k": float(teff), "star_radius_rsun": float(ms["radius_rsun"][0]),
        "star_mass_msun": float(ms["mass_msun"][0]), "star_luminosity_lsun": lum,
        "star_age_gyr": age, "star_activity": activity, "distance_pc": distance,
        "star_jmag": float(stars.apparent_j_magnitude(np.array([teff]), np.array([lum]),
                                                       np.array([distance]))[0]),
    }



def _draw_planet(rng: np.random.Generator, star: dict, name: str, system: str, survey: SurveyDesign) -> PlanetTruth:
    radius = float(rng.uniform(*RADIUS_RANGE_EARTH))
    mass = float(planets.mass_from_radius(radius) * math.exp(rng.normal(0, 0.15)))
    # Instellation relative to the star's runaway-greenhouse limit (Kopparapu et al. 2014), so the
    # survey spans inside, in and outside the habitable zone for every spectral type.
    s_runaway = float(habitable.seff_limits(star["star_teff_k"], 1.0)["runaway_greenhouse"])
    x = _draw_hz_position(rng)
    s_eff = x * s_runaway
    a_au = math.sqrt(star["star_luminosity_lsun"] / s_eff)
    ecc = float(min(abs(rng.normal(0, 0.06)), 0.4))  # small-planet eccentricities (Van Eylen et al. 2019)
    locked = bool(orbits.tidal_locking(np.array([a_au]), np.array([star["star_mass_msun"]]),
                                       np.array([mass]), np.array([radius]),
                                       np.array([star["star_age_gyr"]]))[0])
    period = float(orbits.orbital_period_days(a_au, star["star_mass_msun"]))
    rotation = period if locked else float(10 ** rng.uniform(math.log10(0.5), math.log10(5.0)))
    thin = rng.random() < 0.10
    pressure = float(10 ** (rng.uniform(-2.5, -1.0) if thin else rng.uniform(-0.3, 1.0)))
    # Carbonate–silicate feedback (Walker et al. 1981): CO2 builds up as instellation falls below the
    # runaway limit, from Earth-like 400 ppm at the inner edge to tenths of the atmosphere near the outer.
    log_co2 = float(np.clip(rng.normal(-3.4 + CO2_FEEDBACK_DEX * np.clip((1 - x) / 0.4, 0.0, 1.2), 0.6),
                            -6.0, -0.2))
    comp = {"CO2": 10**log_co2, "CH4": 10 ** rng.uniform(-7.0, -5.3), "H2": 10 ** rng.uniform(-6.5, -2.7),
            "CO": 10 ** rng.uniform(-8, -5), "O2": 10 ** rng.uniform(-10, -8), "N2O": 1e-12, "O3": 1e-12,
            "H2O": 0.0}
    if star["star_teff_k"] < M_DWARF_MAX_TEFF_K and rng.random() < ABIOTIC_O2_FALSE_POSITIVE:
        comp["O2"] = 10 ** rng.uniform(-3, -1)
        comp["O3"] = float(atmosphere.ozone_from_o2(comp["O2"]))
    # XUV erosion (Zahnle & Catling 2017 "cosmic shoreline": escape ~ I_xuv vs v_esc^4); activity
    # stands in for the XUV history, so the observing log's flare reports carry real information.
    v_esc = float(planets.escape_velocity_earth(mass, radius))
    erosion = star["star_activity"] * s_eff / v_esc**4
    retained = not (erosion > 1.2 or (erosion > 0.7 and rng.random() < 0.5))
    if not retained:
        pressure = float(10 ** rng.uniform(-3.5, -2.5))
    n_tr = survey.transits(rng, star)
    method = "transit" if n_tr > 0 or rng.random() < 0.6 else "RV"
    return PlanetTruth(
        name=name, system=system, source="synthetic", **star,
        planet_radius_earth=radius, planet_mass_earth=mass, semimajor_axis_au=a_au, eccentricity=ecc,
        obliquity_deg=float(rng.uniform(0, 45)) if not locked else 0.0,
        rotation_period_days=rotation, tidally_locked=locked, surface_pressure_bar=pressure,
        composition=atmosphere.normalise(comp), ocean_fraction=float(rng.uniform(0.1, 0.9)),
        surface_albedo=float(rng.uniform(0.25, 0.35)),
        cloud_top_pressure_bar=pressure if rng.random() < 0.3 else pressure * float(rng.uniform(0.05, 0.6)),
        biosphere="none", atmosphere_retained=retained, n_transits=n_tr if method == "transit" else 0,
        discovery_method=method, discovery_year=int(rng.integers(2016, 2031)))


def _draw_hz_position(rng: np.random.Generator) -> float:
    u, cum = rng.random(), 0.0
    for share, lo, hi in HZ_POSITION_MIX:
        cum += share
        if u <= cum:
            break
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))



def _system_name(seed: int, k: int) -> str:
    return f"ASB-{seed:04d}-{k:05d}"  # the full seed: ids of different seeds never collide


def sample_abiotic_population(n: int, seed: int = 0, survey: SurveyDesign | None = None) -> list[PlanetTruth]:
    """`n` synthetic planets in systems of 1–3 planets, before any biosphere is assigned."""
    if n < 0:
        raise InputValidationError("n", n, "a non-negative number of planets")
    survey = survey or SURVEYS[DEFAULT_SURVEY]
    truths: list[PlanetTruth] = []
    k = 0
    while len(truths) < n:
        srng = np.random.default_rng([seed, k, 0])
        star = _draw_star(srng)
        n_planets = int(srng.choice([1, 1, 2, 3]))
        system = _system_name(seed, k)
        for j in range(min(n_planets, n - len(truths))):
            prng = np.random.default_rng([seed, k, j + 1])
            truths.append(_draw_planet(prng, star, f"{system} {'bcd'[j]}", system, survey))
        k += 1
    return truths


def viable_biospheres(truth: PlanetTruth, temperature_k: float) -> tuple[str, ...]:
    """The biospheres a metabolism allows on a planet with liquid water, its atmosphere and this mean surface
    temperature (the environment `assign_biospheres` asks the metabolic models about)."""
    env = metabolism.environment_from_conditions(
        light_available=True, co2_vmr=truth.composition["CO2"], h2_vmr=truth.composition["H2"],
        o2_vmr=truth.composition["O2"], liquid_water=True, temperature_k=temperature_k)
    return metabolism.viable_biospheres(env)


def assign_biospheres(truths: list[PlanetTruth], climate, seed: int = 0) -> list[PlanetTruth]:
    """Let life arise where the true climate and chemistry allow a metabolism (with P_LIFE_IF_VIABLE).

    `climate` is the true climate of the abiotic `truths` (`climate.ClimateResult`, planet i = truths[i]):
    it decides liquid water; the metabolic models decide which biosphere is viable; a viable biosphere
    then changes the atmosphere (O2/O3 or CH4). Planets left unchanged are returned as the same objects.
    """
    out = []
    for i, t in enumerate(truths):
        rng = np.random.default_rng([seed, zlib.crc32(t.name.encode()), 7])
        can_host = labels.is_habitable(float(climate.liquid_water_fraction[i]), bool(climate.runaway[i]),
                                       t.atmosphere_retained, t.surface_pressure_bar)
        if t.biosphere != "none" or not can_host or rng.random() >= P_LIFE_IF_VIABLE:
            out.append(t)
            continue
        viable = viable_biospheres(t, float(climate.global_mean_surface_temperature_k[i]))
        if not viable:
            out.append(t)
            continue
        kind = str(rng.choice(sorted(viable)))
        comp = atmosphere.apply_biosphere(t.composition, kind, rng)
        out.append(replace(t, biosphere=kind, composition=comp))
    return out


"""Observing log text: determinism, variety, activity content, missing values, catalog phrasing, and claims
that follow the retrieval's significance."""

import re
from dataclasses import replace

import numpy as np
import pytest

from astrobio.errors import InputValidationError
from astrobio.world.atmosphere import prior_composition
from astrobio.world.observation import NO_SPECTRUM, SpectrumReading
from astrobio.world.observing_log import log_facts, observing_log, spectral_type, superflare_rate_per_year
from astrobio.world.types import PlanetObserved, PlanetTruth

NAN = float("nan")


def truth(**kw) -> PlanetTruth:
    base = dict(
        name="ASB-0000-00001 b", system="ASB-0000-00001", source="synthetic", star_teff_k=3200.0,
        star_radius_rsun=0.22, star_mass_msun=0.2, star_luminosity_lsun=0.005, star_age_gyr=5.0,
        star_activity=0.5, distance_pc=12.0, star_jmag=9.0, planet_radius_earth=1.1, planet_mass_earth=1.3,
        semimajor_axis_au=0.07, eccentricity=0.01, obliquity_deg=0.0, rotation_period_days=10.0,
        tidally_locked=True, surface_pressure_bar=1.0,
        composition={"N2": 0.95, "CO2": 0.04, "CH4": 0.005, "H2O": 0.005, "O2": 0.0, "O3": 0.0},
        ocean_fraction=0.5, surface_albedo=0.3, cloud_top_pressure_bar=0.8, biosphere="methanogenic",
        atmosphere_retained=True, n_transits=10, discovery_method="transit", discovery_year=2021)
    base.update(kw)
    return PlanetTruth(**base)


def observed(t: PlanetTruth, **kw) -> PlanetObserved:
    base = dict(name=t.name, system=t.system, star_teff_k=t.star_teff_k, star_radius_rsun=t.star_radius_rsun,
                star_mass_msun=t.star_mass_msun, star_luminosity_lsun=t.star_luminosity_lsun,
                star_age_gyr=t.star_age_gyr, distance_pc=t.distance_pc, star_jmag=t.star_jmag,
                planet_radius_earth=t.planet_radius_earth, planet_mass_earth=t.planet_mass_earth,
                semimajor_axis_au=t.semimajor_axis_au, period_days=t.period_days, eccentricity=t.eccentricity,
                instellation_searth=t.instellation_searth, equilibrium_temperature_k=250.0,
                n_transits=t.n_transits, discovery_method=t.discovery_method)
    base.update(kw)
    return PlanetObserved(**base)


def reading(flat=False, clear_sigma=0.0, **sigma) -> SpectrumReading:
    """A spectrum's reading with the given detection significances (other gases 0 sigma)."""
    det = {g: 0.0 for g in ("CO2", "CH4", "H2O", "O3", "O2")} | sigma
    return SpectrumReading(None, prior_composition(), det, clear_sigma, flat)


def log(t, seed=0, spec=None, **obs_kw) -> str:
    spec = spec if spec is not None else (reading() if t.n_transits else NO_SPECTRUM)
    return observing_log(observed(t, **obs_kw), log_facts(t), spec, np.random.default_rng(seed))


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=\.)\s+(?=[A-Z0-9])", text) if s]


FLARE_WORDS = re.compile(r"flare|flaring", re.I)


def test_deterministic_for_a_seed_and_varies_across_seeds():
    t = truth()
    assert log(t, seed=3) == log(t, seed=3)
    assert len({log(t, seed=s) for s in range(10)}) == 10


def test_length_and_required_content():
    for s in range(40):
        t = truth(star_activity=(s % 10) / 10, n_transits=(0, 3, 10, 50)[s % 4], star_age_gyr=0.3 + s / 4)
        text = log(t, seed=s)
        assert 3 <= len(sentences(text)) <= 8, text
        assert "ASB-0000-00001 b" in text and "M4V" in text  # 3200 K is an M4 dwarf
        if t.n_transits:
            assert "NIRSpec PRISM" in text and str(t.n_transits) in text
        else:
            low = text.lower()
            assert "no transmission" in low or "pending" in low or "no jwst" in low or "not been scheduled" in low


def test_many_planets_give_many_distinct_sentence_patterns():
    patterns = set()
    for s in range(60):
        t = truth(star_activity=(s % 7) / 6, n_transits=(0, 5, 20)[s % 3], star_age_gyr=0.4 + s / 6)
        for sent in sentences(log(t, seed=s)):
            patterns.add(re.sub(r"[-+~]?\d[\d.e+-]*", "#", sent.replace(t.name, "P").replace(t.system, "S")))
    assert len(patterns) >= 80


def test_flares_reported_for_very_active_and_quiet_for_quiet_stars():
    for s in range(25):
        active = log(truth(star_activity=1.0), seed=s)
        assert FLARE_WORDS.search(active) and not re.search(r"no flar", active), active
        quiet = log(truth(star_activity=0.0), seed=s)
        for sent in sentences(quiet):
            if FLARE_WORDS.search(sent):
                assert re.search(r"no flar|quiet", sent), sent


def test_long_periods_are_not_printed_in_scientific_notation():
    t = truth(semimajor_axis_au=3.0, star_mass_msun=1.0, star_teff_k=5700.0)  # P ~ 1900 d
    text = " ".join(log(t, seed=s) for s in range(30))
    assert "e+0" not in text and re.search(r"1,?89\d d", text)


def test_flare_rate_mapping_end_points():
    assert superflare_rate_per_year(0.0) == pytest.approx(1 / 562, rel=0.01)  # Sun-like, Okamoto+2021
    assert superflare_rate_per_year(1.0) == pytest.approx(355, rel=0.01)  # ~1 per day, Günther+2020
    assert superflare_rate_per_year(0.5, 1e32) == pytest.approx(10 * superflare_rate_per_year(0.5))


def test_age_hints_follow_the_true_age():
    young = " ".join(log(truth(star_age_gyr=0.1), seed=s) for s in range(30))
    old = " ".join(log(truth(star_age_gyr=12.0), seed=s) for s in range(30))
    assert re.search(r"young|youth|Myr", young) and not re.search(r"thick-disk|old,", young)
    assert re.search(r"thick-disk|old", old) and not re.search(r"youth|young", old)


def test_missing_values_never_print_nan():
    t = truth(star_age_gyr=NAN, star_activity=NAN, discovery_year=0, discovery_method="unknown")
    for s in range(20):
        text = log(t, seed=s, star_teff_k=NAN, distance_pc=NAN, planet_mass_earth=NAN, planet_radius_earth=NAN,
                   period_days=NAN, instellation_searth=NAN)
        assert text.strip() and not re.search(r"\bnan\b", text, re.I), text
        assert "unknown type" in text


def test_catalog_planet_reads_from_catalog_fields():
    t = truth(name="Proxima Centauri b", system="Proxima Centauri", source="catalog", star_teff_k=3050.0,
              distance_pc=1.3, discovery_method="RV", discovery_year=2016, n_transits=0,
              catalog_missing=("star_age_gyr",))
    text = log(t, seed=1, star_age_gyr=NAN)  # the catalog observation of a missing age is NaN
    assert "Open Exoplanet Catalogue" in text and "2016" in text
    assert "M5.5" in text  # the catalog's spectral type, not the Teff-derived one
    assert re.search(r"1\.3|4 light-years", text)
    assert re.search(r"does not transit|no transits|without transits", text, re.I)
    assert not re.search(r"Gyr|Myr|young|youth|thick-disk", text)  # no age invented when the catalog has none


def test_claims_are_about_gases_never_the_label():
    for s in range(40):
        text = log(truth(n_transits=50), seed=s).lower()
        assert "inhabited" not in text and "habitable" not in text and "biosphere" not in text
        assert "methanogenic" not in text


def test_spectral_type_from_teff():
    assert spectral_type(5772.0) == "G2V"
    assert spectral_type(3850.0) == "M0V"
    assert spectral_type(NAN) == ""


def test_bad_inputs_raise():
    t = truth()
    with pytest.raises(InputValidationError, match="rng"):
        observing_log(observed(t), log_facts(t), reading(), 0)
    with pytest.raises(InputValidationError, match="observed"):
        observing_log(t, log_facts(t), reading(), np.random.default_rng(0))


def test_claims_follow_the_retrieval_significance():
    t = truth(n_transits=50)
    for s in range(30):
        strong = log(t, seed=s, spec=reading(CO2=7.2)).lower()
        assert re.search(r"(co2|carbon dioxide)( absorption| feature| is seen)", strong) and "tentative" not in strong
        tentative = log(t, seed=s, spec=reading(CO2=3.9)).lower()
        assert re.search(r"co2|carbon dioxide", tentative) and re.search(r"tentative|hints|possible", tentative)
        faint = log(t, seed=s, spec=reading(CO2=2.9, CH4=1.0)).lower()  # below 3 sigma: nothing is claimed
        assert not re.search(r"co2|carbon dioxide|ch4|methane", faint), faint


def test_flat_spectrum_only_when_the_spectrum_excludes_a_clear_atmosphere():
    t = truth(n_transits=50)
    flat = [log(t, seed=s, spec=reading(flat=True, clear_sigma=6.0)).lower() for s in range(10)]
    assert all(re.search(r"flat|no atmospheric features", x) for x in flat)
    weak = " ".join(log(t, seed=s, spec=reading(flat=True, clear_sigma=3.0)) for s in range(30))
    assert "thin or absent" not in weak and "bare rock" not in weak  # the data could not tell


def test_no_spectrum_no_gas_claims():
    t = truth(n_transits=0)
    for s in range(30):
        text = log(t, seed=s).lower()
        assert not re.search(r"co2|carbon dioxide|methane|ch4|ozone|water vapour|oxygen|flat|feature", text), text

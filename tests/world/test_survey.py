"""The synthetic survey: deterministic draws, its design choices (jwst / future), biospheres."""

import math

import numpy as np
import pytest

from astrobio.errors import InputValidationError
from astrobio.world import survey
from astrobio.world.types import GASES


def test_abiotic_population_is_deterministic_and_m_dwarf_heavy():
    a = survey.sample_abiotic_population(300, seed=3)
    b = survey.sample_abiotic_population(300, seed=3)
    assert [t.to_dict() for t in a] == [t.to_dict() for t in b]
    assert len(a) == 300 and len({t.name for t in a}) == 300
    teff = np.array([t.star_teff_k for t in a])
    assert 0.45 < (teff < 3900).mean() < 0.7  # M-dwarf heavy (55% by design)
    s = np.array([t.instellation_searth for t in a])
    assert (s < 0.3).any() and (s > 1.5).any() and ((s > 0.5) & (s < 1.0)).any()  # outside, in, inside HZ
    for t in a:
        assert set(t.composition) == set(GASES)
        assert math.isclose(sum(t.composition.values()), 1.0, rel_tol=1e-9)
        assert t.biosphere == "none"


def test_survey_designs_change_only_the_transits():
    jwst = survey.sample_abiotic_population(400, seed=2, survey=survey.SURVEYS["jwst"])
    future = survey.sample_abiotic_population(400, seed=2, survey=survey.SURVEYS["future"])
    assert [t.star_teff_k for t in jwst] == [t.star_teff_k for t in future]  # same stars and planets
    assert [t.planet_radius_earth for t in jwst] == [t.planet_radius_earth for t in future]
    n_j = np.array([t.n_transits for t in jwst])
    n_f = np.array([t.n_transits for t in future])
    assert set(n_j) <= {0, 3, 5, 10, 20, 50} and n_j.max() == 50
    transiting = np.array([t.discovery_method == "transit" for t in future])
    assert (n_f[transiting] >= 5).all() and (n_f[~transiting] == 0).all()  # every transiting planet observed
    near_m = np.array([t.star_teff_k < 3900 and t.distance_pc <= 20 for t in future]) & transiting
    assert near_m.any() and (n_f[near_m] >= 20).all()
    assert survey.SURVEYS["future"].spectrum_config().noise_floor_ppm < survey.SURVEYS["jwst"].spectrum_config().noise_floor_ppm


def test_unknown_survey_is_a_typed_error():
    with pytest.raises(InputValidationError, match="survey"):
        survey.survey_design("hubble")

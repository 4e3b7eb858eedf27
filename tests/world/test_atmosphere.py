"""Atmospheric composition: normalisation, mean molecular weight, prior, O3(O2), biospheres."""

import math

import numpy as np
import pytest

from astrobio.constants import MOLAR_MASS
from astrobio.errors import InputValidationError
from astrobio.world.atmosphere import (
    METHANOGENIC_CH4_RANGE,
    O2_PAL,
    O3_COLUMN_MEAN_VMR_EARTH,
    OXYGENIC_N2O_RANGE,
    OXYGENIC_O2_RANGE,
    apply_biosphere,
    composition_array,
    mean_molecular_weight,
    normalise,
    ozone_from_o2,
    prior_composition,
)
from astrobio.world.types import GASES


def test_normalise_fills_every_gas_with_n2_balance():
    comp = normalise({"CO2": 0.1, "O2": 0.2, "N2": 0.123})  # the given N2 is ignored
    assert set(comp) == set(GASES)
    assert comp["N2"] == pytest.approx(0.7, abs=1e-15)
    assert comp["CH4"] == 0.0
    assert sum(comp.values()) == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize("bad, field", [
    ({"CO2": -1e-3}, "composition[CO2]"),
    ({"O2": float("nan")}, "composition[O2]"),
    ({"CH4": "lots"}, "composition[CH4]"),
    ({"Xe": 0.1}, "composition"),
    ({"CO2": 0.7, "O2": 0.4}, "composition"),
    ([("CO2", 0.1)], "composition"),
])
def test_normalise_rejects_bad_compositions(bad, field):
    with pytest.raises(InputValidationError) as err:
        normalise(bad)
    assert err.value.field == field


def test_mean_molecular_weight_exact_values():
    assert mean_molecular_weight({}) == pytest.approx(MOLAR_MASS["N2"], abs=1e-12)
    assert mean_molecular_weight({"CO2": 1.0}) == pytest.approx(MOLAR_MASS["CO2"], abs=1e-12)
    air = {"O2": 0.2095, "CO2": 4e-4}
    expected = 0.7901 * 28.014 + 0.2095 * 31.998 + 4e-4 * 44.009
    assert mean_molecular_weight(air) == pytest.approx(expected, rel=1e-12)
    # The array form [P, G] agrees with the dict form.
    arr = composition_array([air, {"CO2": 1.0}])
    np.testing.assert_allclose(mean_molecular_weight(arr), [expected, 44.009], rtol=1e-12)
    with pytest.raises(InputValidationError):
        mean_molecular_weight(np.ones((2, 3)))


def test_prior_is_earth_like_n2_with_co2_and_no_biosignatures():
    prior = prior_composition()
    assert prior["CO2"] == 4e-4 and prior["CH4"] == 1.8e-6
    assert prior["O2"] == prior["O3"] == prior["N2O"] == 0.0
    assert prior["N2"] == pytest.approx(1 - 4e-4 - 1.8e-6 - 1e-7 - 5.3e-7, abs=1e-15)
    assert 28.01 < mean_molecular_weight(prior) < 28.03


def test_ozone_from_o2_anchors_saturation_and_monotonic():
    assert ozone_from_o2(O2_PAL) == pytest.approx(O3_COLUMN_MEAN_VMR_EARTH, rel=1e-12)
    assert O3_COLUMN_MEAN_VMR_EARTH == pytest.approx(3.75e-7, rel=0.01)  # 300 DU over 1 atm
    assert ozone_from_o2(0.01 * O2_PAL) == pytest.approx(0.47 * O3_COLUMN_MEAN_VMR_EARTH, rel=1e-9)
    assert ozone_from_o2(0.35) == ozone_from_o2(O2_PAL)  # saturated above 1 PAL
    assert ozone_from_o2(0.0) == 0.0
    o2 = np.geomspace(1e-12, 0.5, 200)
    o3 = ozone_from_o2(o2)
    assert o3.shape == (200,) and np.all(np.diff(o3) >= 0) and np.all(o3 > 0)
    # Falls slowly: 1e-3 PAL of O2 still keeps 15 % of the ozone column.
    assert ozone_from_o2(1e-3 * O2_PAL) / ozone_from_o2(O2_PAL) == pytest.approx(0.15, rel=1e-9)
    for bad in (-1e-3, float("nan"), 1.5):
        with pytest.raises(InputValidationError):
            ozone_from_o2(bad)


def test_oxygenic_biosphere_adds_o2_o3_n2o_within_ranges_and_is_reproducible():
    base = prior_composition()
    before = dict(base)
    for seed in range(20):
        comp = apply_biosphere(base, "oxygenic", np.random.default_rng(seed))
        assert OXYGENIC_O2_RANGE[0] <= comp["O2"] <= OXYGENIC_O2_RANGE[1]
        assert comp["O3"] == pytest.approx(ozone_from_o2(comp["O2"]), rel=1e-12)
        assert OXYGENIC_N2O_RANGE[0] <= comp["N2O"] <= OXYGENIC_N2O_RANGE[1]
        assert 1e-6 <= comp["CH4"] <= 1e-5
        assert comp["CO2"] == base["CO2"]
        assert sum(comp.values()) == pytest.approx(1.0, abs=1e-12)
    assert base == before  # input not mutated
    a = apply_biosphere(base, "oxygenic", np.random.default_rng(7))
    b = apply_biosphere(base, "oxygenic", np.random.default_rng(7))
    c = apply_biosphere(base, "oxygenic", np.random.default_rng(8))
    assert a == b and a["O2"] != c["O2"]


def test_methanogenic_biosphere_adds_ch4_and_stays_anoxic():
    for seed in range(20):
        comp = apply_biosphere(prior_composition(), "methanogenic", np.random.default_rng(seed))
        assert METHANOGENIC_CH4_RANGE[0] <= comp["CH4"] <= METHANOGENIC_CH4_RANGE[1]
        assert comp["O2"] == 0.0 and comp["O3"] == 0.0


def test_no_biosphere_leaves_the_abiotic_atmosphere():
    abiotic = {"CO2": 0.05, "O2": 1e-9, "CO": 1e-6}
    assert apply_biosphere(abiotic, "none", np.random.default_rng(0)) == normalise(abiotic)


def test_biogenic_gases_dilute_an_n2_poor_atmosphere():
    comp = apply_biosphere({"CO2": 0.96, "H2O": 0.04}, "oxygenic", np.random.default_rng(3))
    assert sum(comp.values()) == pytest.approx(1.0, abs=1e-12)
    assert comp["N2"] == pytest.approx(0.0, abs=1e-12)
    assert comp["CO2"] / comp["H2O"] == pytest.approx(24.0, rel=1e-12)  # both scaled alike
    assert comp["O2"] >= OXYGENIC_O2_RANGE[0]


def test_apply_biosphere_rejects_bad_inputs():
    with pytest.raises(InputValidationError) as err:
        apply_biosphere(prior_composition(), "photosynthetic", np.random.default_rng(0))
    assert err.value.field == "biosphere"
    with pytest.raises(InputValidationError) as err:
        apply_biosphere(prior_composition(), "oxygenic", 42)
    assert err.value.field == "rng"
    assert math.isclose(sum(prior_composition().values()), 1.0)

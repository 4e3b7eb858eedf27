"""Metabolic feasibility (cobra FBA on the shipped models) and the permitted-network graph."""

import math

import pytest
import torch

from astrobio.errors import InputValidationError
from astrobio.world import metabolism as M
from astrobio.world.metabolism import (
    Environment,
    environment_from,
    environment_from_conditions,
    feasible_metabolisms,
    metabolic_graph,
    viable_biospheres,
)


def env(light=False, co2=False, h2=False, o2=False, organics=False, water=True, t=293.0) -> Environment:
    return Environment(light, co2, h2, o2, organics, water, t)


EVERYTHING = env(True, True, True, True, True, t=298.0)


# --- FBA: the resources README reference growth rates (1% tolerance) ------------------------------

def test_synechocystis_photoautotrophic_growth_needs_light():
    lit = feasible_metabolisms(env(light=True, co2=True))
    assert lit["oxygenic_photosynthesis"] == pytest.approx(0.088, rel=0.01)
    assert "oxygenic_photosynthesis" not in feasible_metabolisms(env(light=False, co2=True))
    assert "oxygenic_photosynthesis" not in feasible_metabolisms(env(light=True, co2=False))
    assert M.flux_result("oxygenic_photosynthesis", env(co2=True).flags).growth_per_h < 1e-6


def test_oxygenic_photosynthesis_evolves_oxygen():
    fluxes = M.biosphere_gas_fluxes(env(light=True, co2=True))
    assert fluxes["oxygenic"]["o2"] == pytest.approx(5.58, rel=0.01)  # README: O2 +5.58


def test_methanogen_grows_on_h2_and_co2_and_makes_methane():
    with_h2 = feasible_metabolisms(env(co2=True, h2=True))
    assert with_h2["hydrogenotrophic_methanogenesis"] == pytest.approx(0.111, rel=0.01)
    gases = M.biosphere_gas_fluxes(env(co2=True, h2=True))["methanogenic"]
    assert gases["ch4"] == pytest.approx(7.78, rel=0.01)
    assert gases["co2"] == pytest.approx(-12.1, rel=0.01)
    assert "hydrogenotrophic_methanogenesis" not in feasible_metabolisms(env(co2=True))
    assert "hydrogenotrophic_methanogenesis" not in feasible_metabolisms(env(h2=True))


def test_ecoli_aerobic_and_tmaritima_fermentation_reference_rates():
    assert feasible_metabolisms(env(co2=True, o2=True, organics=True))["aerobic_heterotrophy"] == \
        pytest.approx(0.874, rel=0.01)
    # E. coli still grows anaerobically (0.21 h^-1) but without O2 uptake it is not aerobic heterotrophy
    anaerobic = M.flux_result("aerobic_heterotrophy", env(co2=True, organics=True).flags)
    assert anaerobic.growth_per_h == pytest.approx(0.212, rel=0.01) and not anaerobic.feasible
    hot = feasible_metabolisms(env(co2=True, organics=True, t=350.0))
    assert hot["fermentation"] == pytest.approx(0.359, rel=0.01)
    assert M.flux_result("fermentation", env(organics=True).flags).exchange_fluxes["h2"] == \
        pytest.approx(33.2, rel=0.01)
    assert "fermentation" not in feasible_metabolisms(env(co2=True, organics=True, t=300.0))


def test_water_and_temperature_windows_gate_everything():
    assert feasible_metabolisms(env(True, True, True, True, True, water=False)) == {}
    assert feasible_metabolisms(env(True, True, True, True, True, t=240.0)) == {}
    assert set(feasible_metabolisms(env(True, True, True, True, True, t=380.0))) == {
        "hydrogenotrophic_methanogenesis"}  # only the 122 C methanogen window reaches 380 K
    assert set(feasible_metabolisms(EVERYTHING)) == {
        "oxygenic_photosynthesis", "hydrogenotrophic_methanogenesis", "aerobic_heterotrophy"}


def test_viable_biospheres():
    assert viable_biospheres(env(light=True, co2=True)) == ("oxygenic",)
    assert viable_biospheres(env(co2=True, h2=True)) == ("methanogenic",)
    assert viable_biospheres(EVERYTHING) == ("oxygenic", "methanogenic")
    assert viable_biospheres(env(light=True)) == ()


def test_environment_from_conditions_thresholds():
    e = environment_from_conditions(True, 4e-4, 5e-6, 0.21, True, 288.0)
    assert (e.light, e.co2, e.h2, e.o2, e.organics, e.liquid_water) == (True, True, False, True, False, True)
    assert environment_from_conditions(False, M.CO2_MIN_VMR, M.H2_MIN_VMR, 0.0, True, 288.0).flags == (
        False, True, True, False, False)
    e2 = environment_from(0.0, {"CO2": 0.9, "N2": 0.1}, False, 210.0)
    assert (e2.light, e2.co2, e2.o2, e2.liquid_water) == (False, True, False, False)
    with pytest.raises(InputValidationError, match="co2_vmr"):
        environment_from_conditions(True, float("nan"), 0.0, 0.0, True, 288.0)
    with pytest.raises(InputValidationError, match="temperature_k"):
        Environment(True, True, False, False, False, True, -5.0)
    with pytest.raises(InputValidationError, match="temperature_k"):
        Environment(True, True, False, False, False, True, float("inf"))
    lava = environment_from_conditions(True, 0.9, 0.0, 0.0, False, 5529.4)  # 55 Cnc e's grey steam runaway
    assert feasible_metabolisms(lava) == {} and viable_biospheres(lava) == ()
    with pytest.raises(InputValidationError, match="env"):
        feasible_metabolisms("earth")


def test_feasibility_is_cached_per_model_flags():
    M.flux_result("hydrogenotrophic_methanogenesis", env(co2=True, h2=True).flags)
    before = M._flux_result.cache_info()
    # o2/light/organics do not touch the methanogen's exchanges: same cache entry
    M.flux_result("hydrogenotrophic_methanogenesis", env(True, True, True, True, True).flags)
    after = M._flux_result.cache_info()
    assert after.hits == before.hits + 1 and after.misses == before.misses


def test_warm_up_solves_every_problem_once():
    assert M.warm_up() == 24  # 8 (iJN678: light, co2, o2) + 4 (iAF692) + 8 (e_coli_core) + 4 (T. maritima)
    misses = M._flux_result.cache_info().misses
    feasible_metabolisms(env(light=True, h2=True, t=330.0))
    assert M._flux_result.cache_info().misses == misses


# --- the graph ------------------------------------------------------------------------------------

def _check_graph(g):
    assert g.x.dtype == torch.float32 and g.x.shape == (g.num_nodes, M.N_FEATURES)
    assert g.edge_index.dtype == torch.int64 and g.edge_index.shape[0] == 2
    assert torch.isfinite(g.x).all()
    if g.edge_index.numel():
        assert int(g.edge_index.min()) >= 0 and int(g.edge_index.max()) < g.num_nodes
    assert g.x[:, 0].sum() + g.x[:, 1].sum() == g.num_nodes  # each node is a metabolite or a reaction
    # bipartite: every edge joins a metabolite and a reaction
    src, dst = g.edge_index
    assert torch.all(g.x[src, 0] + g.x[dst, 0] == 1)


def test_graph_shapes_and_sizes():
    full = metabolic_graph(EVERYTHING)
    _check_graph(full)
    assert 150 <= full.num_nodes <= 400
    one = metabolic_graph(env(co2=True, h2=True))
    _check_graph(one)
    assert 50 <= one.num_nodes < full.num_nodes


def test_no_water_gives_empty_graph_and_water_only_is_tiny():
    empty = metabolic_graph(env(True, True, True, True, True, water=False))
    assert empty.num_nodes == 0 and empty.x.shape == (0, 64) and empty.edge_index.shape == (2, 0)
    bare = metabolic_graph(env())
    _check_graph(bare)
    assert 0 < bare.num_nodes < 30
    names = M.graph_node_names(env())
    assert "nh4" in names and "co2" not in names and not any(n.startswith("R:") for n in names)
    assert torch.all(bare.x[:, 24] == 1)  # only seeds: water-borne N, S and metal ions


def test_light_adds_photosynthesis_nodes():
    lit, dark = env(light=True, co2=True), env(co2=True)
    lit_names, dark_names = M.graph_node_names(lit), M.graph_node_names(dark)
    assert {"photon", "R:PSII", "R:PSI_2", "R:RBPC"} <= set(lit_names)  # photosystems, RuBisCO
    assert not {"photon", "R:PSII", "R:RBPC"} & set(dark_names)
    assert metabolic_graph(lit).num_nodes > metabolic_graph(dark).num_nodes
    g, psii = metabolic_graph(lit), lit_names.index("R:PSII")
    assert g.x[psii, 46] == 1 and g.x[psii, 32] == 1  # uses photons, used by oxygenic photosynthesis
    o2 = lit_names.index("o2")
    assert g.x[o2, 57] == 1 and g.x[o2, 59] == 1  # O2 is secreted and a biosignature gas


def test_methanogenesis_nodes_and_features():
    e = env(co2=True, h2=True)
    names, g = M.graph_node_names(e), metabolic_graph(e)
    assert {"ch4", "h2", "R:MCR", "R:HDR"} <= set(names)  # methyl-CoM reductase, heterodisulfide reductase
    ch4 = names.index("ch4")
    x = g.x[ch4]
    assert x[0] == 1 and x[19] == 1 and x[57] == 1 and x[33] == 1
    assert x[2] == pytest.approx(math.log1p(1)) and x[3] == pytest.approx(math.log1p(4))  # CH4: C1 H4
    assert x[18] == pytest.approx(-1.0)  # carbon oxidation state of methane is -4
    co2 = names.index("co2")
    assert g.x[co2, 18] == pytest.approx(1.0) and g.x[co2, 24] == 1 and g.x[co2, 58] == 1
    # MCR produces CH4: an edge reaction -> ch4
    mcr = names.index("R:MCR")
    assert ((g.edge_index[0] == mcr) & (g.edge_index[1] == ch4)).any()


def test_graph_is_deterministic_and_cached():
    e = env(light=True, co2=True, o2=True, t=301.0)
    first = metabolic_graph(e)
    info = M._cached_graph.cache_info()
    again = metabolic_graph(Environment(True, True, False, True, False, True, 305.0))  # same key
    assert again is first and M._cached_graph.cache_info().hits == info.hits + 1
    rebuilt = M._cached_graph.__wrapped__(*M._graph_key(e))[0]
    assert torch.equal(rebuilt.x, first.x) and torch.equal(rebuilt.edge_index, first.edge_index)


def test_abiotic_scope_network_expansion():
    reached, fired = M.abiotic_scope(frozenset({"co2", "h2o", "h"}))
    assert "hco3" in reached and ("HCO3E", 1) in fired  # carbonic anhydrase needs no cofactor
    assert "glc_D" not in reached
    reached_none, fired_none = M.abiotic_scope(frozenset())
    assert not any(r == "HCO3E" for r, _ in fired_none) and "co2" not in reached_none


def test_base_id_normalisation():
    assert M.base_id("glc_DASH_D_e") == M.base_id("glc__D_c") == "glc_D"
    assert M.base_id("fdxr_DASH_2_DASH_2_c") == "fdxr_2_2"
    assert M.base_id("photon") == "photon"

"""Which metabolisms an environment permits, and the metabolic network it permits, from real models.

Four genome-scale models ship in `astrobio/resources/metabolic/` (sources and licences in its README).
Each stands for one metabolism class; flux balance analysis (FBA: cobra parses the SBML, HiGHS via
scipy solves the LPs) decides whether that metabolism can grow with the substrates the environment offers:

| metabolism | model | objective | environment controls (lower bound when available, else 0) | signature flux |
|---|---|---|---|---|
| oxygenic_photosynthesis | iJN678 (Nogales et al. 2012) | Ec_biomass_SynAuto | light: EX_photon_e −100; co2: EX_hco3_e −3.7; o2: EX_o2_e −1000; glucose closed | O2 evolved |
| hydrogenotrophic_methanogenesis | iAF692 (Feist et al. 2006) | Mb_biomass_30 | h2: EX_h2_e −40; co2: EX_co2_e −999999; methanol closed | CH4 secreted |
| aerobic_heterotrophy | e_coli_core (Orth et al. 2010) | Biomass_Ecoli_core | o2: EX_o2_e −1000; organics: EX_glc__D_e −10; co2: EX_co2_e −1000 | O2 consumed |
| fermentation | T. maritima (Zhang et al. 2009) | BiomassEcoli_TM | organics: EX_glc_e −10; co2: EX_co2_e −1000 | H2 secreted |

Bounds are those of the resources README, whose reference growth rates (0.088, 0.111, 0.874, 0.359 h⁻¹)
the tests reproduce. Nutrients (N, P, S, metals) stay open as in each model's file: a planet with liquid
water is assumed to weather them out of rock. iAF692 also keeps its trace growth factors (cysteine,
p-aminobenzoate, nicotinate; Feist et al. 2006 medium) because the model cannot grow without them; they
are not carbon or energy sources. A metabolism is *feasible* when FBA growth > 1e-6 h⁻¹, its signature
flux (the chemistry that defines the class) is non-zero, liquid water is present and the temperature is
inside the class window (`TEMPERATURE_WINDOWS_K`).

The network the environment permits (`metabolic_graph`) is a bipartite metabolite/reaction graph:
1. *Abiotic scope*: network expansion (Ebenhöh et al. 2004, Biosystems 73:53; Goldford et al. 2019,
   Nat Ecol Evol 3:1715) over the union of the four models' reactions, from the environment's seed
   compounds without cofactors (no ATP/NAD seeds: with them the scope is the whole network, ~550
   metabolites, whatever the environment).
2. *Biotic backbone*: for each feasible metabolism, the reactions of a parsimonious FBA solution (pFBA,
   Lewis et al. 2010, Mol Syst Biol 6:390) carrying at least 0.5% of that
   solution's largest internal flux: photosystems and Calvin cycle, the methanogenic C1 pathway,
   glycolysis and fermentation, plus the main biosynthetic branches.
Compartments merge by BiGG base id (old `_DASH_` ids normalised), so transporters vanish; currency
metabolites (`CURRENCY`: H+, water, ATP/ADP, NAD(P)(H), quinones, …; Ma & Zeng 2003, Bioinformatics 19:270)
are left out of edges so hubs do not dominate. Typical sizes: ~15 nodes (water only), 60–130 (one
metabolism), ~250 (all four). No liquid water gives an empty graph. Edges: substrate → reaction →
product, in the direction of the pFBA flux (both directions for reversible scope reactions).

Node features x[:, k] (float32, 64 columns; 0 where not applicable):
| k | feature | k | feature |
|---|---|---|---|
| 0 | is metabolite | 1 | is reaction |
| 2–13 | log1p atom counts C, H, O, N, P, S, Fe, Mg, Co, Ni, Mo, other | 14 | log1p total atoms |
| 15 | formula known | 16 | charge / 10 |
| 17 | log10(molar mass g/mol) / 3 | 18 | carbon nominal oxidation state / 4 (LaRowe & Van Cappellen 2011) |
| 19 | gas (CO2, O2, H2, CH4, N2, H2S, CO, NH3) | 20–23 | compartment c, e, p, u (thylakoid) in any model |
| 24 | seed (environment supplies it) | 25 | in the abiotic scope |
| 26 | produced by a graph reaction | 27 | consumed by a graph reaction |
| 28–31 | in model e_coli_core, iJN678, iAF692, T_Maritima | 32–35 | used by metabolism (`METABOLISMS` order) |
| 36 | log1p in-degree | 37 | log1p out-degree |
| 38 | degree / (num_nodes − 1) | 39 | reversible (reaction) |
| 40 | log10(1 + max pFBA |flux|) / 2 | 41 | log1p number of substrates (incl. currency) |
| 42 | log1p number of products (incl. currency) | 43 | log1p number of genes in the GPR |
| 44 | ATP made (+1) / used (−1) | 45 | NAD(P)H made (+1) / used (−1) |
| 46 | uses photons | 47 | elementally balanced (cobra check_mass_balance) |
| 48–52 | environment light, co2, h2, o2, organics (same on every node) | 53–56 | growth h⁻¹ of each metabolism / 1 h⁻¹ |
| 57 | secreted by a feasible metabolism | 58 | taken up by a feasible metabolism |
| 59 | biosignature gas (O2, CH4, N2O) | 60 | number of models containing it / 4 |
| 61 | number of metabolisms using it / 4 | 62 | C atoms / total atoms |
| 63 | H/C ratio / 4 | | |

Everything expensive is cached per process: models load once (~3 s for all four), FBA runs once per
model and relevant substrate flags (at most 14 problems), graphs once per (flags, feasible set). The
returned graphs are shared: `clone()` one before changing it.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from typing import Any

from astrobio.errors import InputValidationError, check_finite_range

METABOLISMS = ("oxygenic_photosynthesis", "hydrogenotrophic_methanogenesis", "aerobic_heterotrophy",
               "fermentation")
MODEL_FILES = ("e_coli_core.xml", "iJN678.xml", "iAF692.xml", "T_Maritima.xml")
GROWTH_THRESHOLD_PER_H = 1e-6
SIGNATURE_THRESHOLD = 1e-6  # mmol gDW^-1 h^-1
BACKBONE_FRACTION = 0.005  # keep pFBA reactions carrying >= 0.5% of the largest internal flux
PFBA_FRACTION = 1.0 - 1e-6  # optimal growth, less a solver tolerance
N_FEATURES = 64

# Temperature windows (K) for each metabolism class on Earth. Lower limit of cell division and
# metabolism for unicellular life ~ -20 C (Clarke et al. 2013, PLoS ONE 8:e66207). Upper limits:
# photosynthesis ~73 C (Brock 1967, Science 158:1012); methanogenesis 122 C (Methanopyrus kandleri
# 116, Takai et al. 2008, PNAS 105:10949); aerobic respiration 100 C (Aeropyrum pernix, Sako et al.
# 1996, Int J Syst Bacteriol 46:1070); fermentation is modelled by T. maritima, 55-90 C (Huber et al.
# 1986, Arch Microbiol 144:324).
TEMPERATURE_WINDOWS_K = {
    "oxygenic_photosynthesis": (253.15, 346.15),
    "hydrogenotrophic_methanogenesis": (253.15, 395.15),
    "aerobic_heterotrophy": (253.15, 373.15),
    "fermentation": (328.15, 363.15),
}

# Mixing-ratio thresholds above which a gas counts as available to metabolism (1 bar reference).
# CO2: cyanobacteria with a CO2-concentrating mechanism photosynthesise down to a few ppm (Badger &
# Price 2003, J Exp Bot 54:609). H2: hydrogenotrophic methanogens stop at H2 partial pressures of
# order 1 Pa, ~10 ppmv (Cord-Ruwisch et al. 1988, Arch Microbiol 149:350). O2: E. coli respires at
# <= 3 nM dissolved O2 (Stolper et al. 2010, PNAS 107:18755), i.e. 3 nM / 250 uM (air-saturated
# water at 25 C) x 0.2095 = 2.5e-6.
CO2_MIN_VMR = 1e-5
H2_MIN_VMR = 1e-5
O2_MIN_VMR = 2.5e-6

# Currency metabolites (BiGG base ids) left out of graph edges (after Ma & Zeng 2003).
CURRENCY = frozenset(
    "h h2o atp adp amp gtp gdp gmp utp udp ump ctp cdp cmp itp idp nad nadh nadp nadph fad fadh2 fmn "
    "fmnh2 pi ppi coa accoa q8 q8h2 mqn8 mql8 pq pqh2 fdxo_2_2 fdxr_2_2 fdxox fdxrd na1 k".split())
GASES = frozenset("co2 o2 h2 ch4 n2 h2s co nh3".split())
BIOSIGNATURE_GASES = frozenset("o2 ch4 n2o".split())
ELEMENTS = ("C", "H", "O", "N", "P", "S", "Fe", "Mg", "Co", "Ni", "Mo")
COMPARTMENTS = ("c", "e", "p", "u")
# Seeds any planet with liquid water supplies: water and weathered N, P, S and metal ions.
WATER_SEEDS = ("h2o", "h", "nh4", "no3", "n2", "pi", "so4", "h2s", "fe2", "fe3", "mg2", "k", "na1", "ca2",
               "mn2", "zn2", "cu2", "cobalt2", "ni2", "mobd", "cl")
FLAG_SEEDS = {"light": ("photon",), "co2": ("co2", "hco3"), "h2": ("h2",), "o2": ("o2",),
              "organics": ("glc_D",)}
FLAGS = ("light", "co2", "h2", "o2", "organics")


@dataclass(frozen=True)
class Environment:
    """What a planet's surface offers to life. Hashable, so it keys the caches."""

    light: bool  # stellar photons reach the surface
    co2: bool  # CO2 (and dissolved HCO3-) available
    h2: bool  # H2 available (electron donor for methanogens)
    o2: bool  # O2 available (electron acceptor)
    organics: bool  # fixed organic carbon (sugars) available
    liquid_water: bool  # surface liquid water somewhere
    temperature_k: float  # representative temperature of the liquid-water habitat

    def __post_init__(self):
        # Any physical temperature: the grey steam runaway of a lava world can exceed 5000 K (55 Cnc e), and far
        # above water's critical point no metabolism's window admits it, so such a planet is simply barren.
        check_finite_range("temperature_k", self.temperature_k, 0.0, None, "K")

    @property
    def flags(self) -> tuple[bool, ...]:
        """Substrate flags in `FLAGS` order."""
        return tuple(bool(getattr(self, f)) for f in FLAGS)


def environment_from_conditions(light_available: bool, co2_vmr: float, h2_vmr: float, o2_vmr: float,
                                liquid_water: bool, temperature_k: float,
                                organics: bool = False) -> Environment:
    """Environment from planet quantities: gases count above the documented *_MIN_VMR thresholds."""
    vmr = {name: check_finite_range(name, v, 0.0, 1.0) for name, v in
           (("co2_vmr", co2_vmr), ("h2_vmr", h2_vmr), ("o2_vmr", o2_vmr))}
    return Environment(light=bool(light_available), co2=vmr["co2_vmr"] >= CO2_MIN_VMR,
                       h2=vmr["h2_vmr"] >= H2_MIN_VMR, o2=vmr["o2_vmr"] >= O2_MIN_VMR,
                       organics=bool(organics), liquid_water=bool(liquid_water),
                       temperature_k=float(temperature_k))


def environment_from(instellation_searth: float, composition: dict[str, float], liquid_water: bool,
                     temperature_k: float, organics: bool = False) -> Environment:
    """Environment from instellation (Earth units) and a GASES mixing-ratio dict (missing gas = 0)."""
    s = check_finite_range("instellation_searth", instellation_searth, 0.0)
    return environment_from_conditions(s > 0.0, composition.get("CO2", 0.0), composition.get("H2", 0.0),
                                       composition.get("O2", 0.0), liquid_water, temperature_k, organics)


@dataclass(frozen=True)
class _Spec:
    """How one metabolism class is run on its model."""

    model_file: str
    objective: str
    fixed_bounds: tuple[tuple[str, float], ...]  # exchange lower bounds set whatever the environment
    controls: tuple[tuple[str, str, float], ...]  # (flag, exchange, lower bound when flag is set)
    signature: tuple[str, float]  # (exchange, +1 secretion / -1 uptake) that defines the class


SPECS = {
    "oxygenic_photosynthesis": _Spec(
        "iJN678.xml", "Ec_biomass_SynAuto", (("EX_glc_DASH_D_e", 0.0),),
        (("light", "EX_photon_e", -100.0), ("co2", "EX_hco3_e", -3.7), ("o2", "EX_o2_e", -1000.0)),
        ("EX_o2_e", 1.0)),
    "hydrogenotrophic_methanogenesis": _Spec(
        "iAF692.xml", "Mb_biomass_30", (("EX_meoh_e", 0.0),),
        (("h2", "EX_h2_e", -40.0), ("co2", "EX_co2_e", -999999.0)), ("EX_ch4_e", 1.0)),
    "aerobic_heterotrophy": _Spec(
        "e_coli_core.xml", "Biomass_Ecoli_core", (),
        (("o2", "EX_o2_e", -1000.0), ("organics", "EX_glc__D_e", -10.0), ("co2", "EX_co2_e", -1000.0)),
        ("EX_o2_e", -1.0)),
    "fermentation": _Spec(
        "T_Maritima.xml", "BiomassEcoli_TM", (),
        (("organics", "EX_glc_e", -10.0), ("co2", "EX_co2_e", -1000.0)), ("EX_h2_e", 1.0)),
}
# Which metabolism's gas output each biosphere corresponds to (types.BIOSPHERES).
BIOSPHERE_METABOLISM = {"oxygenic": "oxygenic_photosynthesis", "methanogenic": "hydrogenotrophic_methanogenesis"}


def base_id(identifier: str) -> str:
    """BiGG base id: strip the compartment suffix and normalise old-style escapes (glc_DASH_D_c -> glc_D)."""
    stem = identifier.rsplit("_", 1)[0] if identifier[-2:-1] == "_" else identifier
    return _normalise(stem)


def _normalise(identifier: str) -> str:
    s = identifier.replace("_DASH_", "_").replace("_LPAREN_", "(").replace("_RPAREN_", ")")
    while "__" in s:
        s = s.replace("__", "_")
    return s


@lru_cache(maxsize=None)
def load_model(model_file: str):
    """A shipped SBML model, parsed once per process (never mutate it outside a `with model:` block)."""
    import cobra

    if model_file not in MODEL_FILES:
        raise InputValidationError("model_file", model_file, f"one of {MODEL_FILES}")
    path = resources.files("astrobio.resources.metabolic") / model_file
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # libsbml notes about old-style ids and missing units
        return cobra.io.read_sbml_model(str(path))


@dataclass(frozen=True)
class FluxResult:
    """FBA outcome of one metabolism under one set of available substrates."""

    growth_per_h: float
    feasible: bool  # growth above threshold and the signature flux runs the defining way
    exchange_fluxes: dict[str, float]  # metabolite base id -> exchange flux (+ secretion), non-zero only
    backbone: tuple[tuple[str, float], ...]  # (reaction id, pFBA flux) above BACKBONE_FRACTION


def flux_result(metabolism: str, flags: tuple[bool, ...]) -> FluxResult:
    """FBA (growth, exchanges) and pFBA backbone of `metabolism` given substrate flags (FLAGS order)."""
    if metabolism not in SPECS:
        raise InputValidationError("metabolism", metabolism, f"one of {METABOLISMS}")
    if len(flags) != len(FLAGS):
        raise InputValidationError("flags", flags, f"{len(FLAGS)} booleans in order {FLAGS}")
    available = dict(zip(FLAGS, flags))
    # only the flags this model's exchanges depend on key the cache: 24 FBA problems in all
    return _flux_result(metabolism, tuple(bool(available[flag]) for flag, _, _ in SPECS[metabolism].controls))


@dataclass(frozen=True)
class _LinearProblem:
    """A model as arrays: S v = 0, lb <= v <= ub (the file's default bounds)."""

    reaction_ids: tuple[str, ...]
    index: dict[str, int]
    stoichiometry: Any  # scipy.sparse.csr_matrix (metabolites, reactions)
    lower: Any  # np.ndarray (reactions,)
    upper: Any  # np.ndarray (reactions,)
    exchanges: tuple[int, ...]
    internal: tuple[int, ...]  # neither boundary nor biomass


@lru_cache(maxsize=None)
def _linear_problem(model_file: str) -> _LinearProblem:
    import numpy as np
    from cobra.util.array import create_stoichiometric_matrix

    model = load_model(model_file)
    ids = tuple(r.id for r in model.reactions)
    exchanges = {r.id for r in model.exchanges}  # a cobra property recomputed on every access
    return _LinearProblem(
        ids, {r: i for i, r in enumerate(ids)},
        create_stoichiometric_matrix(model, array_type="lil").tocsr(),
        np.array([r.lower_bound for r in model.reactions]), np.array([r.upper_bound for r in model.reactions]),
        tuple(i for i, r in enumerate(ids) if r in exchanges),
        tuple(i for i, r in enumerate(model.reactions) if not r.boundary and "biomass" not in r.id.lower()))


@lru_cache(maxsize=None)
def _flux_result(metabolism: str, controls_on: tuple[bool, ...]) -> FluxResult:
    # The LPs go to HiGHS (scipy) rather than cobra's GLPK interface: reverting a pFBA objective through
    # optlang/sympy costs ~1 s per problem, HiGHS solves FBA and pFBA of iJN678 in ~30 ms each.
    spec = SPECS[metabolism]
    lp = _linear_problem(spec.model_file)
    lower = lp.lower.copy()
    for rxn, lb in spec.fixed_bounds:
        lower[lp.index[rxn]] = lb
    for (_, rxn, lb), on in zip(spec.controls, controls_on, strict=True):
        lower[lp.index[rxn]] = lb if on else 0.0
    objective = lp.index[spec.objective]
    fluxes = _fba(lp, lower, objective)
    growth = float(fluxes[objective]) if fluxes is not None else 0.0
    exchange, sign = spec.signature
    if growth <= GROWTH_THRESHOLD_PER_H or sign * fluxes[lp.index[exchange]] <= SIGNATURE_THRESHOLD:
        return FluxResult(max(growth, 0.0), False, {}, ())
    exchanges = {base_id(lp.reaction_ids[i][3:]): float(fluxes[i]) for i in lp.exchanges
                 if abs(fluxes[i]) > SIGNATURE_THRESHOLD}
    parsimonious = _pfba(lp, lower, objective, growth)
    largest = max(abs(parsimonious[i]) for i in lp.internal)
    backbone = tuple((lp.reaction_ids[i], float(parsimonious[i])) for i in lp.internal
                     if abs(parsimonious[i]) >= BACKBONE_FRACTION * largest)
    return FluxResult(growth, True, exchanges, backbone)


def _fba(lp: _LinearProblem, lower, objective: int):
    """Fluxes maximising reaction `objective` (None when infeasible)."""
    import numpy as np
    from scipy.optimize import linprog

    c = np.zeros(len(lp.reaction_ids))
    c[objective] = -1.0
    res = linprog(c, A_eq=lp.stoichiometry, b_eq=np.zeros(lp.stoichiometry.shape[0]),
                  bounds=np.c_[lower, lp.upper], method="highs")
    return res.x if res.status == 0 else None


def _pfba(lp: _LinearProblem, lower, objective: int, growth: float):
    """Parsimonious FBA (Lewis et al. 2010): min sum |v| at PFBA_FRACTION of optimal growth; |v| <= t."""
    import numpy as np
    from scipy import sparse
    from scipy.optimize import linprog

    n, m = len(lp.reaction_ids), lp.stoichiometry.shape[0]
    eye = sparse.identity(n, format="csr")
    growth_row = sparse.csr_matrix(([-1.0], ([0], [objective])), shape=(1, 2 * n))
    a_ub = sparse.vstack([sparse.hstack([eye, -eye]), sparse.hstack([-eye, -eye]), growth_row]).tocsr()
    b_ub = np.r_[np.zeros(2 * n), -PFBA_FRACTION * growth]
    a_eq = sparse.hstack([lp.stoichiometry, sparse.csr_matrix((m, n))]).tocsr()  # S v = 0, t free of S
    bounds = np.r_[np.c_[lower, lp.upper], np.c_[np.zeros(n), np.full(n, np.inf)]]
    res = linprog(np.r_[np.zeros(n), np.ones(n)], A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=np.zeros(m),
                  bounds=bounds, method="highs")
    if res.status != 0:
        raise RuntimeError(f"pFBA failed after a feasible FBA ({res.message})")
    return res.x[:n]


def warm_up() -> int:
    """Load the models, solve every FBA problem and build the reaction pool; returns the problem count.

    Call it in a parent process before forking workers so they inherit warm caches (~10 s CPU once).
    """
    for flags in itertools.product((False, True), repeat=len(FLAGS)):
        for name in METABOLISMS:
            flux_result(name, flags)
    reaction_pool()
    return _flux_result.cache_info().currsize


def _check_environment(env: Environment) -> None:
    if not isinstance(env, Environment):
        raise InputValidationError("env", type(env).__name__, "an astrobio.world.metabolism.Environment")


def _in_window(metabolism: str, env: Environment) -> bool:
    lo, hi = TEMPERATURE_WINDOWS_K[metabolism]
    return env.liquid_water and lo <= env.temperature_k <= hi


def feasible_metabolisms(env: Environment) -> dict[str, float]:
    """{metabolism: FBA growth rate h^-1} for the metabolisms the environment permits (feasible only)."""
    _check_environment(env)
    out = {}
    for name in METABOLISMS:
        if _in_window(name, env):
            result = flux_result(name, env.flags)
            if result.feasible:
                out[name] = result.growth_per_h
    return out


def viable_biospheres(env: Environment) -> tuple[str, ...]:
    """Subset of ("oxygenic", "methanogenic") whose metabolism is feasible in `env`."""
    feasible = feasible_metabolisms(env)
    return tuple(b for b, m in BIOSPHERE_METABOLISM.items() if m in feasible)


def biosphere_gas_fluxes(env: Environment) -> dict[str, dict[str, float]]:
    """{biosphere: {gas base id: FBA exchange flux mmol gDW^-1 h^-1 (+ released)}} for viable biospheres.

    Gases are O2, CO2, CH4, H2 (whichever the metabolism exchanges); oxygenic ~ +5.6 O2, methanogenic
    ~ +7.8 CH4 at the reference bounds.
    """
    out = {}
    for biosphere in viable_biospheres(env):
        fluxes = flux_result(BIOSPHERE_METABOLISM[biosphere], env.flags).exchange_fluxes
        out[biosphere] = {g: f for g, f in fluxes.items() if g in ("o2", "co2", "ch4", "h2")}
    return out


# --- the network the environment permits ---------------------------------------------------------

ALIASES = {"glc": "glc_D"}  # T. maritima names D-glucose `glc`; the other models `glc__D`/`glc_DASH_D`


def _met_id(identifier: str) -> str:
    b = base_id(identifier)
    return ALIASES.get(b, b)


@dataclass(frozen=True)
class _MetInfo:
    elements: tuple[tuple[str, float], ...]  # from the first model (MODEL_FILES order) with a formula
    charge: float
    compartments: frozenset[str]
    models: frozenset[int]  # indices into MODEL_FILES


@dataclass(frozen=True)
class _RxnInfo:
    substrates: frozenset[str]  # all participants, base ids, in the model's forward direction
    products: frozenset[str]
    reversible: bool
    n_genes: int
    atp: int  # +1 forward makes ATP, -1 uses it
    nadh: int  # +1 forward makes NAD(P)H, -1 uses it
    photon: bool
    balanced: bool
    models: frozenset[int]


def _reaction_info(rxn, model_index: int) -> _RxnInfo:
    coeff = {}
    for met, c in rxn.metabolites.items():
        coeff[_met_id(met.id)] = coeff.get(_met_id(met.id), 0.0) + c

    def made(ids):  # +1 when the forward reaction produces these carriers, -1 when it uses them
        total = sum(coeff.get(i, 0.0) for i in ids)
        return int(math.copysign(1, total)) if abs(total) > 1e-9 else 0

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        balanced = not rxn.check_mass_balance()
    return _RxnInfo(frozenset(m for m, c in coeff.items() if c < 0), frozenset(m for m, c in coeff.items() if c > 0),
                    rxn.lower_bound < 0 < rxn.upper_bound, len(rxn.genes), made(("atp",)),
                    made(("nadh", "nadph")), "photon" in coeff, balanced, frozenset({model_index}))


@lru_cache(maxsize=None)
def reaction_pool() -> tuple[dict[str, _MetInfo], dict[str, _RxnInfo]]:
    """Union of the four models' metabolites and internal reactions, merged by normalised id."""
    mets: dict[str, _MetInfo] = {}
    rxns: dict[str, _RxnInfo] = {}
    for k, model_file in enumerate(MODEL_FILES):
        model = load_model(model_file)
        for met in model.metabolites:
            mid, comp = _met_id(met.id), met.id.rsplit("_", 1)[-1]
            old = mets.get(mid)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                elements = tuple(sorted(met.elements.items())) if met.formula else ()
            if old is None:
                mets[mid] = _MetInfo(elements, float(met.charge or 0), frozenset({comp}), frozenset({k}))
            else:
                mets[mid] = _MetInfo(old.elements or elements, old.charge, old.compartments | {comp},
                                     old.models | {k})
        for rxn in model.reactions:
            if rxn.boundary or "biomass" in rxn.id.lower():
                continue
            rid = _normalise(rxn.id)
            info = _reaction_info(rxn, k)
            old = rxns.get(rid)
            rxns[rid] = info if old is None else replace(old, models=old.models | {k})
    return mets, rxns


def _seeds(flags: tuple[bool, ...]) -> frozenset[str]:
    seeds = set(WATER_SEEDS)
    for flag, on in zip(FLAGS, flags, strict=True):
        if on:
            seeds.update(FLAG_SEEDS[flag])
    return frozenset(seeds)


@lru_cache(maxsize=64)
def abiotic_scope(seeds: frozenset[str]) -> tuple[frozenset[str], tuple[tuple[str, int], ...]]:
    """Network expansion (Ebenhöh et al. 2004): reachable metabolites and fired (reaction, direction)."""
    _, rxns = reaction_pool()
    steps = [(rid, +1, r.substrates, r.products) for rid, r in rxns.items()]
    steps += [(rid, -1, r.products, r.substrates) for rid, r in rxns.items() if r.reversible]
    # breadth-first: each step fires once all its substrates are reached (missing-substrate counters)
    missing = [len(subs) for _, _, subs, _ in steps]
    waiting: dict[str, list[int]] = {}
    for k, (_, _, subs, _) in enumerate(steps):
        for m in subs:
            waiting.setdefault(m, []).append(k)
    fired = [step[:2] for step, n in zip(steps, missing) if n == 0]
    reached, frontier = set(), sorted(seeds | {m for step, n in zip(steps, missing) if n == 0 for m in step[3]})
    while frontier:
        new = []
        for m in frontier:
            if m in reached:
                continue
            reached.add(m)
            for k in waiting.get(m, ()):
                missing[k] -= 1
                if missing[k] == 0:
                    fired.append(steps[k][:2])
                    new.extend(steps[k][3])
        frontier = sorted(set(new) - reached)
    return frozenset(reached), tuple(sorted(fired))


def _graph_reaction(subs: frozenset[str], prods: frozenset[str]) -> bool:
    s, p = subs - CURRENCY, prods - CURRENCY
    return s != p and bool(s | p)


def metabolic_graph(env: Environment):
    """PyG Data(x=[N, 64] float32, edge_index=[2, E] int64) of the network `env` permits (shared, cached)."""
    return _cached_graph(*_graph_key(env))[0]


def graph_node_names(env: Environment) -> tuple[str, ...]:
    """Node names of `metabolic_graph(env)` in row order: metabolite base ids, then `R:` reaction ids."""
    return _cached_graph(*_graph_key(env))[1]


def _graph_key(env: Environment) -> tuple[tuple[bool, ...], bool, tuple[str, ...]]:
    feasible = feasible_metabolisms(env)
    return env.flags, env.liquid_water, tuple(m for m in METABOLISMS if m in feasible)


@lru_cache(maxsize=512)
def _cached_graph(flags: tuple[bool, ...], liquid_water: bool, feasible: tuple[str, ...]):
    import torch
    from torch_geometric.data import Data

    if not liquid_water:  # no solvent, no metabolism: an empty graph
        return Data(x=torch.zeros(0, N_FEATURES), edge_index=torch.zeros(2, 0, dtype=torch.long),
                    num_nodes=0), ()
    names, edges, x = _build_graph(flags, feasible)
    edge_index = torch.tensor(edges, dtype=torch.long).reshape(-1, 2).t().contiguous()  # (2, E)
    return Data(x=torch.from_numpy(x), edge_index=edge_index, num_nodes=len(names)), names


def _build_graph(flags: tuple[bool, ...], feasible: tuple[str, ...]):
    import numpy as np

    mets, rxns = reaction_pool()
    seeds = _seeds(flags)
    reached, fired = abiotic_scope(seeds)
    # reaction -> (substrates, products) as drawn; usage and flux per metabolism
    drawn: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
    used_by: dict[str, set[int]] = {}
    max_flux: dict[str, float] = {}
    for rid, direction in fired:
        r = rxns[rid]
        subs, prods = (r.substrates, r.products) if direction > 0 else (r.products, r.substrates)
        if _graph_reaction(subs, prods) and rid not in drawn:
            drawn[rid] = (subs, prods)
    exchanged: dict[str, float] = {}
    for j, name in enumerate(METABOLISMS):
        if name not in feasible:
            continue
        result = flux_result(name, flags)
        model = load_model(SPECS[name].model_file)
        for raw_id, flux in result.backbone:
            rid = _normalise(raw_id)
            rxn = model.reactions.get_by_id(raw_id)
            subs = frozenset(_met_id(m.id) for m, c in rxn.metabolites.items() if c * flux < 0)
            prods = frozenset(_met_id(m.id) for m, c in rxn.metabolites.items() if c * flux > 0)
            if not _graph_reaction(subs, prods):
                continue
            drawn.setdefault(rid, (subs, prods))
            used_by.setdefault(rid, set()).add(j)
            max_flux[rid] = max(max_flux.get(rid, 0.0), abs(flux))
            for m in (subs | prods) - CURRENCY:
                used_by.setdefault(m, set()).add(j)
        for m, f in result.exchange_fluxes.items():  # keep the largest exchange of each metabolite
            if abs(f) > abs(exchanged.get(_met_id(m), 0.0)):
                exchanged[_met_id(m)] = f

    met_nodes = {m for m in seeds if m in mets} | {m for s, p in drawn.values() for m in s | p}
    met_names = sorted(met_nodes - CURRENCY)
    rxn_names = sorted(drawn)
    names = tuple(met_names) + tuple("R:" + r for r in rxn_names)
    index = {n: i for i, n in enumerate(names)}
    edges = sorted({(index[m], index["R:" + rid]) for rid, (s, _) in drawn.items() for m in s - CURRENCY}
                   | {(index["R:" + rid], index[m]) for rid, (_, p) in drawn.items() for m in p - CURRENCY})

    n = len(names)
    x = np.zeros((n, N_FEATURES), dtype=np.float32)
    indeg = np.bincount([e[1] for e in edges], minlength=n)
    outdeg = np.bincount([e[0] for e in edges], minlength=n)
    produced = {m for _, p in drawn.values() for m in p}
    consumed = {m for s, _ in drawn.values() for m in s}
    growth = [flux_result(m, flags).growth_per_h if m in feasible else 0.0 for m in METABOLISMS]
    for i, name in enumerate(names):
        row = x[i]
        if i < len(met_names):
            _metabolite_features(row, name, mets[name], seeds, reached, produced, consumed, exchanged)
        else:
            rid = name[2:]
            _reaction_features(row, rxns[rid], drawn[rid], mets, max_flux.get(rid, 0.0))
        for j in used_by.get(name if i < len(met_names) else name[2:], ()):
            row[32 + j] = 1.0
        row[61] = row[32:36].sum() / 4
        row[36], row[37] = math.log1p(indeg[i]), math.log1p(outdeg[i])
        row[38] = (indeg[i] + outdeg[i]) / max(n - 1, 1)
        row[48:53] = flags
        row[53:57] = growth
    return names, edges, x


def _element_features(row, elements: dict[str, float], charge: float) -> None:
    from cobra.core.formula import elements_and_molecular_weights as weights

    for k, el in enumerate(ELEMENTS):
        row[2 + k] = math.log1p(elements.get(el, 0.0))
    row[13] = math.log1p(sum(v for el, v in elements.items() if el not in ELEMENTS))
    total = sum(elements.values())
    row[14] = math.log1p(total)
    row[15] = float(bool(elements))
    row[16] = charge / 10
    mass = sum(weights.get(el, 0.0) * v for el, v in elements.items())
    row[17] = math.log10(mass) / 3 if mass > 0 else 0.0
    c, h = elements.get("C", 0.0), elements.get("H", 0.0)
    if c > 0:  # nominal oxidation state of carbon (LaRowe & Van Cappellen 2011, GCA 75:2030)
        nosc = 4 - (-charge + 4 * c + h - 3 * elements.get("N", 0.0) - 2 * elements.get("O", 0.0)
                    + 5 * elements.get("P", 0.0) - 2 * elements.get("S", 0.0)) / c
        row[18] = nosc / 4
        row[63] = h / c / 4
    row[62] = c / total if total else 0.0


def _metabolite_features(row, mid, info: _MetInfo, seeds, reached, produced, consumed, exchanged) -> None:
    row[0] = 1.0
    _element_features(row, dict(info.elements), info.charge)
    row[19] = float(mid in GASES)
    for k, comp in enumerate(COMPARTMENTS):
        row[20 + k] = float(comp in info.compartments)
    row[24], row[25] = float(mid in seeds), float(mid in reached)
    row[26], row[27] = float(mid in produced), float(mid in consumed)
    for k in info.models:
        row[28 + k] = 1.0
    row[57], row[58] = float(exchanged.get(mid, 0.0) > 0), float(exchanged.get(mid, 0.0) < 0)
    row[59] = float(mid in BIOSIGNATURE_GASES)
    row[60] = len(info.models) / 4


def _reaction_features(row, info: _RxnInfo, drawn, mets, flux: float) -> None:
    subs, prods = drawn
    sign = 1 if subs == info.substrates else -1  # drawn against the model's forward direction
    row[1] = 1.0
    compartments = set().union(*(mets[m].compartments for m in subs | prods if m in mets))
    for k, comp in enumerate(COMPARTMENTS):
        row[20 + k] = float(comp in compartments)
    for k in info.models:
        row[28 + k] = 1.0
    row[39] = float(info.reversible)
    row[40] = math.log10(1 + flux) / 2
    row[41], row[42] = math.log1p(len(subs)), math.log1p(len(prods))
    row[43] = math.log1p(info.n_genes)
    row[44], row[45] = sign * info.atp, sign * info.nadh
    row[46], row[47] = float(info.photon), float(info.balanced)
    row[60] = len(info.models) / 4

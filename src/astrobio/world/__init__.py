"""astrobio.world: physics-based planet runs (SPEC.md section 3).

Public API (imported lazily so `import astrobio.world` stays cheap):
`habitable_zone`, `earth_similarity_index`, `solar_system_planet`, `simulate_run`, `simulate_runs`,
`sample_population`, `catalog_planets`, `observe`, and the record types `PlanetTruth`,
`PlanetObserved`, `PlanetRun`.
"""

from astrobio.world.types import PlanetObserved, PlanetRun, PlanetTruth

_LAZY = {
    "habitable_zone": "astrobio.world.habitable",
    "earth_similarity_index": "astrobio.world.habitable",
    "solar_system_planet": "astrobio.world.catalog",
    "sample_population": "astrobio.world.simulate",
    "catalog_planets": "astrobio.world.catalog",
    "observe": "astrobio.world.observation",
    "simulate_run": "astrobio.world.simulate",
    "simulate_runs": "astrobio.world.simulate",
}

__all__ = ["PlanetObserved", "PlanetRun", "PlanetTruth", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'astrobio.world' has no attribute {name!r}")

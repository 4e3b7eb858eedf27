"""The list, detail and diagram answers of the API, prepared once per server process.

A served table does not change while the server runs, so everything a GET can return is computed ahead
of the requests: each planet's summary is validated against its response model and serialised once, the
catalog is argsorted once per sort key and order, and a planet's detail is serialised on its first request
and kept. A list request is then a few numpy masks over the catalog and a join of cached bytes, and no
request runs pydantic or the JSON encoder over a planet again.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any, Optional

import numpy as np

from astrobio.serve import schemas as S

HEAVY = ("observed", "prior_climate", "observing_log", "spectrum")  # detail-only fields
SORT_KEYS = ("name", "system", "p_not_habitable", "p_habitable", "p_inhabited", "star_teff_k",
             "instellation_searth", "semimajor_axis_au", "planet_radius_earth", "hz_position")
DIAGRAM_KEYS = ("name", "instellation_searth", "star_teff_k", "p_habitable")  # what the page's diagram draws
SEARCH_CACHE = 1024  # distinct search strings whose matches are kept


def _dumps(obj: Any) -> bytes:
    """The bytes Starlette's JSONResponse would send for `obj` (compact, UTF-8, no NaN)."""
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def _order(summaries: list[dict], key: str, descending: bool) -> np.ndarray:
    """Indices sorted by (value, name), strings case-insensitively; unknown values last in either order,
    in catalog order (as a filtered list sorted the same way would give them)."""
    known = [i for i, s in enumerate(summaries) if s.get(key) is not None]
    unknown = [i for i, s in enumerate(summaries) if s.get(key) is None]

    def sort_key(i: int):
        v = summaries[i][key]
        return (v.casefold() if isinstance(v, str) else v, summaries[i]["name"])

    known.sort(key=sort_key, reverse=descending)
    return np.asarray(known + unknown, dtype=np.int64)


class Listing:
    """Pre-serialised summaries, sort orders and filter columns of a served table's planets."""

    def __init__(self, planets: list[dict[str, Any]], lat: list[float], lon: list[float], maps: np.ndarray):
        self.summaries = [{k: v for k, v in p.items() if k not in HEAVY} for p in planets]
        for s in self.summaries:
            s["hz_position"] = s["hz"]["position"]
        self._planets, self._lat, self._lon, self._maps = planets, lat, lon, maps
        # what response_model=PlanetSummary would send, validated once instead of on every request
        self._summary_json = [S.PlanetSummary.model_validate(s).model_dump_json().encode("utf-8")
                              for s in self.summaries]
        self._orders = {(k, d): _order(self.summaries, k, d) for k in SORT_KEYS for d in (False, True)}
        # NaN (unknown) fails every bound
        self._p_habitable = self._column("p_habitable")
        self._teff = self._column("star_teff_k")
        self._text = [(s["name"].casefold(), str(s["system"]).casefold()) for s in self.summaries]
        self._matches: OrderedDict[str, np.ndarray] = OrderedDict()
        self._details: dict[int, bytes] = {}
        self.diagram_json = _dumps({k: [s[k] for s in self.summaries] for k in DIAGRAM_KEYS})

    def _column(self, key: str) -> np.ndarray:
        return np.array([np.nan if s[key] is None else s[key] for s in self.summaries], dtype=float)

    def __len__(self) -> int:
        return len(self.summaries)

    def _search(self, needle: str) -> np.ndarray:
        hit = self._matches.get(needle)
        if hit is None:
            hit = np.fromiter((needle in name or needle in system for name, system in self._text), dtype=bool,
                              count=len(self._text))
            self._matches[needle] = hit
            if len(self._matches) > SEARCH_CACHE:
                self._matches.popitem(last=False)
        return hit

    def select(self, q: str, min_p_habitable: float, teff_min: Optional[float], teff_max: Optional[float],
               sort: str, descending: bool) -> np.ndarray:
        """Indices of the matching planets in the requested order."""
        with np.errstate(invalid="ignore"):
            keep = self._p_habitable >= min_p_habitable
            if teff_min is not None:
                keep &= self._teff >= teff_min
            if teff_max is not None:
                keep &= self._teff <= teff_max
        needle = q.strip().casefold()
        if needle:
            keep &= self._search(needle)
        order = self._orders[(sort, descending)]
        return order[keep[order]]

    def page_json(self, selected: np.ndarray, offset: int, limit: int) -> bytes:
        """A `PlanetPage` as bytes: the cached summaries of `selected[offset:offset+limit]`."""
        rows = b",".join(self._summary_json[i] for i in selected[offset:offset + limit].tolist())
        return b'{"total":%d,"offset":%d,"limit":%d,"planets":[%s]}' % (len(selected), offset, limit, rows)

    def detail_json(self, i: int) -> bytes:
        """A `PlanetDetail` as bytes, built on the planet's first request and kept (a race builds it twice,
        harmlessly: the bytes are the same)."""
        hit = self._details.get(i)
        if hit is None:
            maps = self._maps[i]
            detail = {**self._planets[i], "temperature_map": {
                "lat_deg": self._lat, "lon_deg": self._lon, "months": np.round(maps, 2).tolist(),
                # equal-weight mean of the 12 monthly means
                "annual_mean": np.round(maps.mean(axis=0), 2).tolist()}}
            hit = self._details[i] = S.PlanetDetail.model_validate(detail).model_dump_json().encode("utf-8")
        return hit

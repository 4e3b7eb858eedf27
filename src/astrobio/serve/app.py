"""The FastAPI application of `astrobio serve`: JSON API under /api, the explorer page at /, OpenAPI at /docs.

Every error is a 4xx whose body names the field, the value and what was expected (`ErrorResponse`).
Planets are found by name in the in-memory table only; exports are written by `astrobio.data.export` from
the serve cache's own store into a temporary file, so no request value ever reaches the file system.
"""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
import threading
import time
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
from fastapi import Body, FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

import astrobio
from astrobio.data import RealDataStorage
from astrobio.errors import AstrobioError, InputValidationError, StorageError
from astrobio.serve import schemas as S
from astrobio.serve.listing import Listing
from astrobio.serve.table import CatalogTable
from astrobio.world.catalog import catalog_truth_from_row
from astrobio.world.habitable import HZ_KEYS, seff_limits
from astrobio.world.stars import TEFF_RANGE_K
from astrobio.world.types import validate_truth

log = logging.getLogger("astrobio.serve")
STATIC = Path(str(resources.files("astrobio.serve") / "static"))
SOLAR_SYSTEM_POINTS = (("Venus", 0.7233), ("Earth", 1.0), ("Mars", 1.5237))  # semimajor axes [AU], L = 1 L_sun
_UNION_TAGS = ("CatalogPlanet", "list[CatalogPlanet]")  # pydantic's names of the two shapes of a predict body
SUN_TEFF_K = 5772.0  # IAU 2015 Resolution B3 nominal solar effective temperature


class SortField(str, Enum):
    name = "name"
    system = "system"
    p_not_habitable = "p_not_habitable"
    p_habitable = "p_habitable"
    p_inhabited = "p_inhabited"
    star_teff_k = "star_teff_k"
    instellation_searth = "instellation_searth"
    semimajor_axis_au = "semimajor_axis_au"
    planet_radius_earth = "planet_radius_earth"
    hz_position = "hz_position"


class Order(str, Enum):
    asc = "asc"
    desc = "desc"


class ServeError(Exception):
    """A request for something that is not there (404) or not allowed (4xx), with field/value/expected."""

    def __init__(self, status: int, field: str, value: Any, expected: str):
        self.status, self.field, self.value, self.expected = status, field, value, expected


def _error_body(details: list[dict]) -> dict:
    details = [{"field": d["field"], "value": jsonable_encoder(d["value"], custom_encoder={bytes: repr}),
                "expected": d["expected"]} for d in details]
    return {"error": details[0], "errors": details}


class Predictor:
    """The run's model for POST /api/predict, giving exactly what `astrobio predict` gives.

    The model (torch, torch_geometric and the weights: the slowest part of a start) is loaded by a
    background thread that the app starts when it starts serving (so a `--workers N` parent process, which
    builds the app but never serves it, loads no model); list and detail requests are answered while it
    loads, and a prediction waits for it. `predict_truths` draws the MC-dropout masks from the request's
    seed, so the answer depends on the inputs and the seed only. One prediction at a time: MC dropout
    switches the shared model's mode.
    """

    LOAD_TIMEOUT_S = 600.0

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._error: Optional[BaseException] = None
        self._loader: Optional[threading.Thread] = None
        self._start_lock = threading.Lock()

    def start(self) -> None:
        """Start loading the model in the background (once; later calls do nothing)."""
        with self._start_lock:
            if self._loader is None:
                self._loader = threading.Thread(target=self._load, name="astrobio-model-loader", daemon=True)
                self._loader.start()

    def _load(self) -> None:
        try:
            # start-up: torch and the model stack (seconds) load in this background thread, not when serving lists
            from astrobio.evaluation import predict as P
            from astrobio.evaluation.inference import load_trained

            self._P = P
            self.loaded = load_trained(self.run_dir)
            self.temperature = P.temperature_of(self.run_dir)
            self.mc_samples = P.MC_SAMPLES
        except BaseException as exc:  # reported to every prediction request (503 with the reason)
            self._error = exc
        finally:
            self._ready.set()

    def wait(self, timeout: float = LOAD_TIMEOUT_S) -> None:
        """Block until the model is loaded; a load that failed raises ServeError 503 with its reason."""
        self.start()
        if not self._ready.wait(timeout):
            raise ServeError(503, "run", str(self.run_dir), f"the model loaded within {timeout:.0f} s")
        if self._error is not None:
            raise ServeError(503, "run", str(self.run_dir),
                             f"a run whose model loads ({type(self._error).__name__}: {self._error})")

    def _predict(self, truths, seed: int) -> list[dict]:
        return self._P.predict_truths(self.loaded, truths, seed=seed, mc_samples=self.mc_samples,
                                      temperature=self.temperature)

    def predict(self, planets: list[S.CatalogPlanet], seed: int) -> list[S.PredictedPlanet]:
        self.wait()
        results: dict[int, S.PredictedPlanet] = {}
        truths: dict[int, Any] = {}
        for i, p in enumerate(planets):
            try:
                truths[i] = catalog_truth_from_row(p.catalog_row())
                validate_truth(truths[i])
            except InputValidationError as exc:
                truths.pop(i, None)
                results[i] = _unmodelled(p.name, exc)
        with self._lock:
            try:
                rows = dict(zip(truths, self._predict(list(truths.values()), seed))) if truths else {}
            except AstrobioError:
                if len(truths) == 1:
                    raise
                # the simulator refused one of them: redo one by one, so only that planet gets the reason
                rows = {}
                for i, t in truths.items():
                    try:
                        rows[i] = self._predict([t], seed)[0]
                    except AstrobioError as exc:
                        results[i] = _unmodelled(planets[i].name, exc)
        for i, row in rows.items():
            results[i] = S.PredictedPlanet(name=planets[i].name, modelled=True,
                                           prediction={k: _json_float(v) for k, v in row.items()})
        return [results[i] for i in range(len(planets))]


def _unmodelled(name: str, exc: Exception) -> S.PredictedPlanet:
    if isinstance(exc, InputValidationError):
        err = S.ErrorDetail(field=exc.field, value=jsonable_encoder(exc.value), expected=exc.expected)
    else:
        err = S.ErrorDetail(field="planet", value=name, expected=f"a planet the simulator can model ({exc})")
    return S.PredictedPlanet(name=name, modelled=False, error=err)


def _json_float(v):
    return None if isinstance(v, float) and not math.isfinite(v) else v


class _AccessLog:
    """Pure ASGI middleware: one log line per request (client, method, path, status, duration), also for
    requests whose client went away mid-response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0, status = time.perf_counter(), [0]

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            client = scope.get("client") or ("-", 0)
            query = scope.get("query_string", b"").decode("latin-1")
            path = scope.get("path", "") + (f"?{query}" if query else "")
            log.info("%s:%s %s %s %s %.1fms", client[0], client[1], scope.get("method"), path,
                     status[0] or "-", (time.perf_counter() - t0) * 1e3)


def hz_curves(n: int = 47) -> dict[str, Any]:
    """Kopparapu et al. (2014) limits S_eff(Teff) over the fits' validity range, for the page's diagram."""
    teff = np.linspace(*TEFF_RANGE_K, n)
    limits = seff_limits(teff, 1.0)
    return {"teff_k": teff.tolist(), "seff": {k: np.asarray(limits[k]).tolist() for k in HZ_KEYS},
            "solar_system": [{"name": name, "instellation_searth": 1.0 / a**2, "star_teff_k": SUN_TEFF_K}
                             for name, a in SOLAR_SYSTEM_POINTS]}


def create_app(table: CatalogTable, predictor: Optional[Predictor] = None) -> FastAPI:
    """The app over `table` (the whole catalog, or any subset a test builds) and `predictor` for POST."""
    @contextlib.asynccontextmanager
    async def lifespan(_app):
        if predictor is not None:
            predictor.start()  # the model loads while the server already answers
        yield

    app = FastAPI(title="astrobio", version=astrobio.__version__, lifespan=lifespan,
                  description="Habitability predictions of the catalog planets and of planets you describe.")
    listing = Listing(table.planets, table.lat, table.lon, table.maps)
    curves = hz_curves()
    export_lock = threading.Lock()  # one export at a time: HDF5 reads of the store are not thread-safe

    def planet_index(name: str) -> int:
        i = table.index_of(name)
        if i is None:
            raise ServeError(404, "name", name, "the name of a served planet (see GET /api/planets?q=...)")
        return i

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        details = []
        # POST /api/predict takes one planet or a list: report only the branch the body's shape chose.
        branch = "list[CatalogPlanet]" if isinstance(exc.body, list) else "CatalogPlanet"
        for e in exc.errors():
            loc = [str(x) for x in e.get("loc", ())]
            if any(x in _UNION_TAGS for x in loc):
                if branch not in loc:
                    continue
                loc = [x for x in loc if x not in _UNION_TAGS]
            if e.get("type") == "json_invalid":
                raw = (await request.body())[:200].decode("utf-8", "replace")
                details.append({"field": "body", "value": raw, "expected": f"valid JSON ({e.get('ctx', {}).get('error', '')} "
                                f"at character {loc[-1] if len(loc) > 1 else '?'})"})
                continue
            details.append({"field": ".".join(loc) or "body", "value": e.get("input"),
                            "expected": e.get("msg", "a valid value")})
        return JSONResponse(status_code=422, content=_error_body(details or [
            {"field": "body", "value": None, "expected": "one planet (an object of catalog columns) or a list of them"}]))

    @app.exception_handler(InputValidationError)
    async def _input(request: Request, exc: InputValidationError):
        return JSONResponse(status_code=422, content=_error_body(
            [{"field": exc.field, "value": exc.value, "expected": exc.expected}]))

    @app.exception_handler(ServeError)
    async def _serve(request: Request, exc: ServeError):
        return JSONResponse(status_code=exc.status, content=_error_body(
            [{"field": exc.field, "value": exc.value, "expected": exc.expected}]))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        expected = {404: "a path of the API (see /docs)", 405: "a method this path allows"}.get(
            exc.status_code, str(exc.detail))
        return JSONResponse(status_code=exc.status_code, headers=getattr(exc, "headers", None),
                            content=_error_body([{"field": "path", "value": request.url.path, "expected": expected}]))

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # The GET endpoints are async: their answers are prepared (`Listing`), so they never block the event
    # loop, and they skip the thread-pool hop a plain `def` endpoint costs on every request.
    @app.get("/api/health", response_model=S.Health)
    async def health():
        return {"status": "ok", "version": astrobio.__version__, "run_id": table.meta.get("run_id", ""),
                "planets": len(table.planets), "skipped": len(table.skipped)}

    @app.get("/api/planets", response_model=S.PlanetPage, responses={422: {"model": S.ErrorResponse}})
    async def planets(q: str = Query("", max_length=200, description="case-insensitive part of the name or system"),
                      min_p_habitable: float = Query(0.0, ge=0.0, le=1.0, allow_inf_nan=False),
                      teff_min: Optional[float] = Query(None, ge=0, allow_inf_nan=False, description="K"),
                      teff_max: Optional[float] = Query(None, ge=0, allow_inf_nan=False, description="K"),
                      sort: SortField = SortField.p_habitable, order: Order = Order.desc,
                      limit: int = Query(50, ge=1, le=S.MAX_LIMIT), offset: int = Query(0, ge=0)):
        if teff_min is not None and teff_max is not None and teff_min > teff_max:
            raise ServeError(422, "query.teff_min", teff_min, f"at most teff_max={teff_max}")
        selected = listing.select(q, min_p_habitable, teff_min, teff_max, sort.value, order is Order.desc)
        return Response(listing.page_json(selected, offset, limit), media_type="application/json")

    @app.get("/api/diagram", response_model=S.DiagramPoints)
    async def diagram():
        """Every served planet, as columns of what the habitable-zone diagram draws (one small request)."""
        return Response(listing.diagram_json, media_type="application/json")

    @app.get("/api/skipped", response_model=list[S.SkippedPlanet])
    async def skipped():
        return table.skipped

    @app.get("/api/hz-limits")
    async def hz_limits():
        """Kopparapu et al. (2014) habitable-zone limits S_eff(Teff) and the Solar System, for the diagram."""
        return curves

    def _export(name: str, suffix: str, write) -> Response:
        rec = table.planets[planet_index(name)]
        if table.store_path is None:
            raise ServeError(404, "name", name, "a planet whose simulated run is stored in the serve cache")
        with export_lock, tempfile.TemporaryDirectory(prefix="astrobio-serve-") as tmp:
            path = Path(tmp) / f"export{suffix}"
            try:
                write(RealDataStorage(table.store_path), rec["run_id"], path)
            except StorageError as exc:
                raise ServeError(404, "name", name, str(exc)) from None
            content = path.read_bytes()
        media = "application/x-netcdf" if suffix == ".nc" else "text/csv; charset=utf-8"
        return Response(content, media_type=media,
                        headers={"Content-Disposition": f'attachment; filename="{rec["run_id"]}{suffix}"'})

    @app.get("/api/planets/{name:path}/datacube.nc", responses={200: {"content": {"application/x-netcdf": {}}},
                                                               404: {"model": S.ErrorResponse}})
    def datacube(name: str, which: str = Query("true", pattern="^(true|prior)$",
                                               description="true or prior climate run (as `astrobio data export`)")):
        # start-up: xarray and netCDF (a second) only when a datacube is asked for
        from astrobio.data.export import export_netcdf

        return _export(name, ".nc", lambda store, rid, path: export_netcdf(store, rid, path, which))

    @app.get("/api/planets/{name:path}/spectrum.csv", responses={200: {"content": {"text/csv": {}}},
                                                                404: {"model": S.ErrorResponse}})
    def spectrum_csv(name: str):
        # start-up: the export module pulls xarray and netCDF (a second) only when a spectrum is asked for
        from astrobio.data.export import export_spectrum_csv

        return _export(name, ".csv", export_spectrum_csv)

    @app.get("/api/planets/{name:path}", response_model=S.PlanetDetail, responses={404: {"model": S.ErrorResponse}})
    async def planet(name: str):
        return Response(listing.detail_json(planet_index(name)), media_type="application/json")

    @app.post("/api/predict", response_model=S.PredictResponse, responses={422: {"model": S.ErrorResponse}})
    def predict(planets: Union[S.CatalogPlanet, list[S.CatalogPlanet]] = Body(...),
                seed: int = Query(0, ge=0, le=2**32 - 1, description="as `astrobio predict --seed`")):
        """One planet or a list of up to 1,000, as catalog CSV columns; the same answer as `astrobio predict`."""
        items = planets if isinstance(planets, list) else [planets]
        if not 1 <= len(items) <= S.MAX_PREDICT:
            raise ServeError(422, "body", len(items), f"1 to {S.MAX_PREDICT} planets")
        if predictor is None:
            raise ServeError(503, "run", None, "a server started with a trained run (astrobio serve RUN)")
        try:
            results = predictor.predict(items, seed)
        except AstrobioError as exc:  # a lone planet the simulator refused past validation: its reason
            results = [_unmodelled(items[0].name, exc)]
        return {"seed": seed, "mc_samples": predictor.mc_samples, "results": results}

    app.add_middleware(_AccessLog)
    return app

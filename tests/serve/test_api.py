"""Every endpoint of the serve API through fastapi.testclient, on a table of a few catalog planets."""

from __future__ import annotations

import csv
import math
import sys
from urllib.parse import quote

import numpy as np
import pytest

import astrobio
from tests.serve.conftest import SERVED, SKIPPED


def _names(page):
    return [p["name"] for p in page["planets"]]


def _error(r, status, field):
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["field"] == field, err
    assert set(err) == {"field", "value", "expected"} and err["expected"]
    return err


# ---------------------------------------------------------------- health, list, skipped
def test_health(client, serve_table, trained_run):
    h = client.get("/api/health").json()
    assert h == {"status": "ok", "version": astrobio.__version__, "run_id": h["run_id"],
                 "planets": len(serve_table.planets), "skipped": len(serve_table.skipped)}
    assert h["run_id"].startswith(f"{trained_run.name}@")
    # TRAPPIST-1 (Teff 2566 K) is below the simulator's range today: served or skipped, never lost
    assert h["planets"] + h["skipped"] == len(SERVED) + len(SKIPPED)


def test_list_default_is_every_planet_by_p_habitable(client, serve_table):
    page = client.get("/api/planets").json()
    assert page["total"] == len(serve_table.planets) and page["offset"] == 0 and page["limit"] == 50
    ps = [p["p_habitable"] for p in page["planets"]]
    assert ps == sorted(ps, reverse=True)
    for p in page["planets"]:
        assert math.isclose(p["p_not_habitable"] + p["p_habitable"] + p["p_inhabited"], 1.0, abs_tol=1e-6)
        assert math.isclose(sum(p[f"w_{m}"] for m in ("datacube", "graph", "spectrum", "text")), 1.0, abs_tol=1e-5)
        assert all(p[f"{c}_std"] >= 0 for c in ("p_not_habitable", "p_habitable", "p_inhabited"))
        hz = p["hz"]
        assert hz["in_hz"] == (0.0 <= hz["position"] <= 1.0)
        a, inner, outer = p["semimajor_axis_au"], hz["limits_au"]["runaway_greenhouse"], hz["limits_au"]["maximum_greenhouse"]
        assert math.isclose(hz["position"], (a - inner) / (outer - inner), rel_tol=1e-12)
        assert "observing_log" not in p and "observed" not in p  # detail-only fields stay out of the list


def test_filters(client, serve_table):
    kepler = _names(client.get("/api/planets", params={"q": "KEPLER"}).json())
    assert sorted(kepler) == sorted(p["name"] for p in serve_table.planets if "kepler" in p["name"].lower())
    assert len(kepler) >= 2
    assert _names(client.get("/api/planets", params={"q": "π"}).json()) == ["π Mensae c"]
    assert client.get("/api/planets", params={"q": "no such planet"}).json()["total"] == 0
    ps = sorted(p["p_habitable"] for p in serve_table.planets)
    cut = ps[len(ps) // 2]
    page = client.get("/api/planets", params={"min_p_habitable": cut}).json()
    assert page["total"] == sum(p >= cut for p in ps) and all(p["p_habitable"] >= cut for p in page["planets"])
    # Kepler-442's catalog Teff is 4402 K: inclusive bounds select it alone
    page = client.get("/api/planets", params={"teff_min": 4402, "teff_max": 4402}).json()
    assert _names(page) == ["Kepler-442 b"]
    cool = client.get("/api/planets", params={"teff_max": 3900}).json()
    assert cool["total"] >= 2 and all(p["star_teff_k"] <= 3900 for p in cool["planets"])


@pytest.mark.parametrize("sort", ["name", "star_teff_k", "instellation_searth", "p_inhabited", "hz_position"])
def test_sort_both_orders(client, sort):
    asc = client.get("/api/planets", params={"sort": sort, "order": "asc"}).json()["planets"]
    desc = client.get("/api/planets", params={"sort": sort, "order": "desc"}).json()["planets"]
    key = (lambda p: p["name"].casefold()) if sort == "name" else (lambda p: p[sort])
    assert [key(p) for p in asc] == sorted(key(p) for p in asc)
    assert [key(p) for p in desc] == sorted((key(p) for p in desc), reverse=True)


def test_pagination_edges(client, serve_table):
    n = len(serve_table.planets)
    full = _names(client.get("/api/planets", params={"sort": "name", "order": "asc"}).json())
    pages = [_names(client.get("/api/planets", params={"sort": "name", "order": "asc", "limit": 2,
                                                        "offset": off}).json()) for off in range(0, n, 2)]
    assert sum(pages, []) == full
    for off in (n, n + 100):
        page = client.get("/api/planets", params={"offset": off}).json()
        assert page["planets"] == [] and page["total"] == n
    assert len(client.get("/api/planets", params={"limit": 10000}).json()["planets"]) == n


@pytest.mark.parametrize("params,field", [
    ({"limit": 0}, "query.limit"), ({"limit": 10001}, "query.limit"), ({"offset": -1}, "query.offset"),
    ({"limit": "ten"}, "query.limit"), ({"min_p_habitable": 1.5}, "query.min_p_habitable"),
    ({"min_p_habitable": "nan"}, "query.min_p_habitable"), ({"teff_min": "hot"}, "query.teff_min"),
    ({"teff_min": 5000.5, "teff_max": 4000}, "query.teff_min"), ({"sort": "mass; drop"}, "query.sort"),
    ({"order": "up"}, "query.order"),
])
def test_bad_query_values_name_the_field(client, params, field):
    err = _error(client.get("/api/planets", params=params), 422, field)
    assert str(err["value"]) == str(params[field.split(".")[1]])


def test_skipped_lists_reasons(client):
    skipped = {s["name"]: s["reason"] for s in client.get("/api/skipped").json()}
    assert set(SKIPPED) <= set(skipped)
    assert "star_radius_rsun" in skipped["11 Com b"]  # a giant host (19 R_sun)
    assert "star_name" in skipped["Kepler-16 (AB) b"]  # circumbinary


# ---------------------------------------------------------------- one planet
def test_detail(client, serve_table):
    d = client.get("/api/planets/Kepler-442 b").json()
    listed = next(p for p in client.get("/api/planets").json()["planets"] if p["name"] == "Kepler-442 b")
    for k in ("p_not_habitable", "p_habitable", "p_inhabited", "p_habitable_std", "w_text", "run_id"):
        assert d[k] == listed[k]
    c = d["prior_climate"]
    assert 0 < c["min_surface_temperature_k"] <= c["global_mean_surface_temperature_k"] <= c["max_surface_temperature_k"]
    assert 0.0 <= c["liquid_water_fraction"] <= 1.0
    m = d["temperature_map"]
    months = np.array(m["months"])
    assert months.shape == (12, len(m["lat_deg"]), len(m["lon_deg"])) and m["units"] == "K"
    assert np.allclose(np.array(m["annual_mean"]), months.mean(0), atol=0.01)
    assert math.isclose(months.min(), c["min_surface_temperature_k"], abs_tol=0.01)
    assert "Kepler-442" in d["observing_log"]
    assert d["spectrum"] is None and d["has_spectrum"] is False  # catalog planets: 0 transits observed
    # observed inputs only: nothing of the hidden truth (atmosphere, biosphere, pressure)
    assert not {"composition", "biosphere", "surface_pressure_bar", "atmosphere_retained"} & set(d["observed"])
    assert d["observed"]["star_teff_k"] == 4402.0


def test_names_unicode_spaces_and_case(client):
    assert client.get("/api/planets/π Mensae c").json()["name"] == "π Mensae c"
    assert client.get("/api/planets/" + quote("π Mensae c")).json()["name"] == "π Mensae c"
    assert client.get("/api/planets/kepler-442 B").json()["name"] == "Kepler-442 b"
    err = _error(client.get("/api/planets/Kepler-442 z"), 404, "name")
    assert err["value"] == "Kepler-442 z"


MARK = "zz-probe-7f3a"


@pytest.fixture
def file_access():
    """Every file-system audit event (open, listdir, remove, rename, ...) whose arguments mention MARK."""
    seen, active = [], [True]

    def hook(event, args):
        fs_event = event == "open" or (event.startswith(("os.", "shutil.", "glob.")) and "env" not in event)
        if active[0] and fs_event and any(MARK in (a.decode(errors="replace") if isinstance(a, bytes) else str(a))
                             for a in args if isinstance(a, (str, bytes)) or hasattr(a, "__fspath__")):
            seen.append((event, args))

    sys.addaudithook(hook)  # hooks cannot be removed: it is switched off instead
    yield seen
    active[0] = False


@pytest.mark.parametrize("name", [f"../{MARK}", f"..%2F..%2F{MARK}", f"%2E%2E%2F{MARK}", f"{MARK}%2Fx",
                                  f"../../../etc/{MARK}", f"{MARK} with spaces", f"/{MARK}", f"{MARK}\\..\\x"])
@pytest.mark.parametrize("suffix", ["", "/datacube.nc", "/spectrum.csv"])
def test_path_characters_never_reach_the_file_system(client, file_access, name, suffix):
    r = client.get(f"/api/planets/{name}{suffix}")
    assert r.status_code == 404, r.text
    assert MARK in str(r.json()["error"]["value"])
    assert file_access == []


# ---------------------------------------------------------------- exports
def test_datacube_export_is_the_data_export(client, serve_table, tmp_path):
    import xarray as xr

    from astrobio.data.export import export_netcdf

    r = client.get("/api/planets/Kepler-442 b/datacube.nc")
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-netcdf"
    got = tmp_path / "served.nc"
    got.write_bytes(r.content)
    rid = next(p["run_id"] for p in serve_table.planets if p["name"] == "Kepler-442 b")
    ref = export_netcdf(serve_table.store_path, rid, tmp_path / "ref.nc")
    with xr.open_dataset(got) as a, xr.open_dataset(ref) as b:
        assert a.attrs["Conventions"] == "CF-1.8" and a.attrs["climate_run"] == "true"
        xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
        assert {k: v for k, v in a.attrs.items() if k != "history"} == {k: v for k, v in b.attrs.items() if k != "history"}
    prior = client.get("/api/planets/Kepler-442 b/datacube.nc", params={"which": "prior"})
    (tmp_path / "prior.nc").write_bytes(prior.content)
    with xr.open_dataset(tmp_path / "prior.nc") as p:
        assert p.attrs["climate_run"] == "prior" and float(p["ps"]) == 1e5
    _error(client.get("/api/planets/Kepler-442 b/datacube.nc", params={"which": "both"}), 422, "query.which")


def test_spectrum_export_of_a_planet_without_spectrum_is_404_with_reason(client):
    err = _error(client.get("/api/planets/Kepler-442 b/spectrum.csv"), 404, "name")
    assert "0 transits" in err["expected"]


# ---------------------------------------------------------------- predict
def _catalog_row(name):
    from astrobio.world.catalog import catalog_rows

    row = next(r for r in catalog_rows() if r["name"] == name)
    return {k: (float(v) if k not in ("name", "system", "star_name", "star_spectral_type", "discovery_method",
                                      "list", "discovery_year") else (int(v) if k == "discovery_year" else v))
            for k, v in row.items() if v != ""}


def test_predict_is_identical_to_the_cli(client, trained_run, tmp_path):
    from typer.testing import CliRunner

    from astrobio.cli import app

    out = tmp_path / "cli.csv"
    result = CliRunner().invoke(app, ["predict", str(trained_run), "--planet", "Kepler-442 b", "--seed", "3",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    with open(out, newline="") as fh:
        cli = next(csv.DictReader(fh))
    r = client.post("/api/predict", params={"seed": 3}, json=_catalog_row("Kepler-442 b"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["seed"] == 3 and len(body["results"]) == 1 and body["results"][0]["modelled"]
    served = body["results"][0]["prediction"]
    assert set(cli) <= set(served)
    for k, v in cli.items():
        assert str(served[k]) == v, k  # the CLI writes repr(float): equal strings = equal floats


def test_predict_list_with_an_unmodellable_planet(client):
    good = _catalog_row("Kepler-442 b")
    giant = {**good, "name": "a gas giant", "planet_radius_rjup": 1.0}
    r = client.post("/api/predict", json=[good, giant])
    assert r.status_code == 200, r.text
    a, b = r.json()["results"]
    assert a["modelled"] and a["name"] == "Kepler-442 b"
    assert not b["modelled"] and b["prediction"] is None
    assert b["error"]["field"] == "planet_radius_earth" and "rocky" in b["error"]["expected"]


def test_predict_bad_bodies_name_the_field(client):
    good = _catalog_row("Kepler-442 b")
    err = _error(client.post("/api/predict", json={**good, "planet_radius_rjup": -1}), 422, "body.planet_radius_rjup")
    assert err["value"] == -1
    _error(client.post("/api/predict", json=[good, {**good, "planet_radius_rjup": "big"}]), 422,
           "body.1.planet_radius_rjup")
    _error(client.post("/api/predict", json={**good, "mass_of_moon": 3}), 422, "body.mass_of_moon")
    _error(client.post("/api/predict", json={k: v for k, v in good.items() if k != "name"}), 422, "body.name")
    err = _error(client.post("/api/predict", content=b'{"name": "x",', headers={"content-type": "application/json"}),
                 422, "body")
    assert "valid JSON" in err["expected"] and err["value"] == '{"name": "x",'
    _error(client.post("/api/predict", json=[]), 422, "body")
    assert _error(client.post("/api/predict", json=[{"name": f"p{i}"} for i in range(1001)]), 422, "body")["value"] == 1001
    _error(client.post("/api/predict", params={"seed": -1}, json=good), 422, "query.seed")


# ---------------------------------------------------------------- page, docs, errors, logging
def test_page_and_docs(client):
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/health", "/api/planets", "/api/skipped", "/api/planets/{name}", "/api/predict",
            "/api/planets/{name}/datacube.nc", "/api/planets/{name}/spectrum.csv"} <= set(paths)


def test_page_needs_no_network():
    """Offline: the page loads nothing from outside the app (the only URL is the SVG namespace)."""
    import re

    from astrobio.serve.app import STATIC

    for f in STATIC.iterdir():
        urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"')]*", f.read_text()))
        assert urls <= {"http://www.w3.org/2000/svg"}, (f.name, urls)


def test_unknown_path_and_method(client):
    _error(client.get("/api/nothing"), 404, "path")
    _error(client.delete("/api/health"), 405, "path")


def test_one_log_line_per_request(client, caplog):
    with caplog.at_level("INFO", logger="astrobio.serve"):
        client.get("/api/health")
        client.get("/api/planets/nope")
    lines = [r.getMessage() for r in caplog.records if r.name == "astrobio.serve"]
    assert len(lines) == 2
    assert " GET /api/health 200 " in lines[0] and " GET /api/planets/nope 404 " in lines[1]


def test_predict_list_where_the_simulator_refuses_one(client, predictor, monkeypatch):
    from astrobio.errors import InputValidationError
    from astrobio.evaluation import predict as P

    real = P.predict_truths

    def refusing(loaded, truths, **kw):
        if any(t.name == "boom" for t in truths):
            raise InputValidationError("temperature_k", 5529.4, "a finite value [0.0, 5000.0] K")
        return real(loaded, truths, **kw)

    monkeypatch.setattr(P, "predict_truths", refusing)
    good = _catalog_row("Kepler-442 b")
    r = client.post("/api/predict", json=[good, {**good, "name": "boom"}])
    assert r.status_code == 200, r.text
    a, b = r.json()["results"]
    assert a["modelled"] and not b["modelled"]
    assert b["error"] == {"field": "temperature_k", "value": 5529.4, "expected": "a finite value [0.0, 5000.0] K"}
    alone = client.post("/api/predict", json={**good, "name": "boom"})
    assert alone.status_code == 200 and alone.json()["results"][0]["error"]["field"] == "temperature_k"


# ---------------------------------------------------------------- prepared answers (Listing)
def test_diagram_columns_match_the_list(client, serve_table):
    d = client.get("/api/diagram").json()
    listed = {p["name"]: p for p in client.get("/api/planets", params={"limit": 10000}).json()["planets"]}
    assert d["name"] == [p["name"] for p in serve_table.planets]  # catalog order, every served planet
    for k in ("instellation_searth", "star_teff_k", "p_habitable"):
        assert d[k] == [listed[n][k] for n in d["name"]]


def test_prepared_answers_validate_against_their_response_models(client):
    from astrobio.serve import schemas as S

    page = client.get("/api/planets", params={"limit": 10000}).json()
    assert S.PlanetPage.model_validate(page).model_dump(mode="json") == page
    detail = client.get("/api/planets/Kepler-442 b").json()
    assert S.PlanetDetail.model_validate(detail).model_dump(mode="json") == detail
    assert client.get("/api/planets/Kepler-442 b").content == client.get("/api/planets/kepler-442 B").content


def _summary(name, system, p_habitable, teff):
    return {"name": name, "system": system, "run_id": f"r-{name}", "predicted_class": "habitable",
            "p_not_habitable": 1 - p_habitable, "p_not_habitable_std": 0.0, "p_habitable": p_habitable,
            "p_habitable_std": 0.0, "p_inhabited": 0.0, "p_inhabited_std": None, "w_datacube": 0.25,
            "w_graph": 0.25, "w_spectrum": 0.25, "w_text": 0.25, "star_teff_k": teff, "instellation_searth": 1.0,
            "semimajor_axis_au": 0.1, "planet_radius_earth": 1.0, "planet_mass_earth": None, "has_spectrum": False,
            "hz": {"limits_au": {}, "position": None, "in_hz": None}, "observing_log": "heavy"}


def test_listing_orders_filters_and_pages_exactly():
    import json

    from astrobio.serve.listing import Listing

    planets = [_summary("b", "Sys", 0.5, 4000.0), _summary("A", "sys", 0.5, None), _summary("c", "Other", 0.9, 3000.0),
               _summary("d", "Other", 0.1, 4000.0)]
    lst = Listing(planets, [0.0], [0.0], np.zeros((4, 12, 1, 1), np.float32))
    names = lambda idx: [planets[i]["name"] for i in idx]  # noqa: E731
    # ties broken by name (case-insensitive for text keys); unknown values last in both orders
    assert names(lst.select("", 0.0, None, None, "p_habitable", True)) == ["c", "b", "A", "d"]
    assert names(lst.select("", 0.0, None, None, "p_habitable", False)) == ["d", "A", "b", "c"]
    assert names(lst.select("", 0.0, None, None, "star_teff_k", False)) == ["c", "b", "d", "A"]
    assert names(lst.select("", 0.0, None, None, "star_teff_k", True)) == ["d", "b", "c", "A"]
    assert names(lst.select("", 0.0, None, None, "name", False)) == ["A", "b", "c", "d"]
    # filters: unknown Teff fails any Teff bound; search is case-insensitive over name and system
    assert names(lst.select("", 0.0, 3500.0, None, "name", False)) == ["b", "d"]
    assert names(lst.select("SYS", 0.5, None, None, "name", False)) == ["A", "b"]
    page = json.loads(lst.page_json(lst.select("", 0.0, None, None, "name", False), 1, 2))
    assert (page["total"], page["offset"], page["limit"]) == (4, 1, 2)
    assert [p["name"] for p in page["planets"]] == ["b", "c"] and "observing_log" not in page["planets"][0]
    assert json.loads(lst.page_json(lst.select("", 0.0, None, None, "name", False), 9, 2))["planets"] == []


def test_a_model_that_cannot_load_is_a_503_with_its_reason_and_lists_still_work(serve_table, tmp_path):
    from fastapi.testclient import TestClient

    from astrobio.serve.app import Predictor, create_app

    predictor = Predictor(tmp_path)  # no checkpoint here
    assert predictor._loader is None  # nothing loads before the app serves
    with TestClient(create_app(serve_table, predictor)) as c:
        assert predictor._loader is not None  # the app's start-up began loading it
        assert c.get("/api/planets", params={"limit": 1}).status_code == 200
        err = _error(c.post("/api/predict", json=_catalog_row("Kepler-442 b")), 503, "run")
        assert "no checkpoint" in err["expected"]

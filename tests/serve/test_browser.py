"""The explorer page in a real browser (headless Chromium), against a server on a free loopback port."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tests.serve.browser import BAD_RADIUS, browser_missing, explore


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(serve_table, predictor):
    import uvicorn

    from astrobio.serve.app import create_app

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(serve_table, predictor), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_explorer_in_headless_chromium(live_server, serve_table, tmp_path):
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    seen = explore(live_server, tmp_path)
    assert seen["points"] == len(serve_table.planets)  # every served planet is on the HZ diagram
    assert seen["solar_system_marks"] == 3
    assert seen["panel_name"] == "Kepler-442 b"
    api = seen["api"]
    for key in ("p_not_habitable", "p_habitable", "p_inhabited", "w_datacube", "w_graph", "w_spectrum", "w_text"):
        cell = seen["panel"][key]
        assert cell["value"] == api[key], key  # the panel shows the API's numbers, to the last bit
        assert cell["text"].startswith(f"{api[key]:.3f}")
    for key in ("p_not_habitable", "p_habitable", "p_inhabited"):
        assert seen["panel"][key]["spread"] == api[key + "_std"]
        assert seen["panel"][key]["text"] == f"{api[key]:.3f} ± {api[key + '_std']:.3f}"
    assert seen["map_drawn"] == 1.0  # the temperature map covers the canvas
    assert "planet_radius_rjup" in seen["form_error"] and BAD_RADIUS in seen["form_error"]
    # the only console error is the browser's note of the 422 the bad radius got
    assert [e for e in seen["console_errors"] if not ("/api/predict" in e and "422" in e)] == []
    for shot in ("page.png", "planet.png", "form-error.png"):
        assert (tmp_path / shot).stat().st_size > 10_000

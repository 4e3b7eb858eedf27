"""Load and faults for `astrobio serve`: bounded concurrent clients against a real server on loopback.

    python benchmarks/serve.py RUN [--requests 5000] [--concurrency 50] [--screenshot docs/serve_explorer.png]

Starts `astrobio serve RUN` as a subprocess on a free 127.0.0.1 port (building the catalog cache on the
first start), then:
1. mixed load: `--requests` requests from `--concurrency` concurrent clients — list pages (filters, sorts,
   offsets), planet details, and POST /api/predict of one planet (`--predict-share` of the requests);
   reports p50/p95/p99 latency per kind, throughput, 4xx/5xx and transport errors;
2. faults: clients that time out and clients that disconnect mid-response (a 2,183-planet list, a
   partial request line, a half-sent body), then checks the server still answers /api/health and a list;
3. with `--screenshot`: the browser test's code (tests/serve/browser.py) loads the page in headless
   Chromium, reports the page-load time with every catalog planet, and saves the screenshot.
Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run: Path, port: int, workers: int, log: Path, catalog: Path | None) -> tuple[subprocess.Popen, float]:
    import httpx

    cmd = [sys.executable, "-m", "astrobio.cli", "serve", str(run), "--port", str(port), "--workers", str(workers)]
    cmd += ["--catalog", str(catalog)] if catalog else []
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return proc, time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.5)


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))] if xs else float("nan")


def _requests(n: int, names: list[str], predict_rows: list[dict], predict_share: float, seed: int):
    rng = random.Random(seed)
    sorts = ["p_habitable", "name", "star_teff_k", "instellation_searth", "hz_position"]
    for _ in range(n):
        u = rng.random()
        if u < predict_share:
            yield "predict", "POST", "/api/predict", rng.choice(predict_rows)
        elif u < predict_share + (1 - predict_share) / 2:
            params = {"sort": rng.choice(sorts), "order": rng.choice(["asc", "desc"]),
                      "limit": rng.choice([25, 50, 100]), "offset": rng.randrange(0, max(1, len(names)))}
            if rng.random() < 0.3:
                params["q"] = rng.choice(["kepler", "toi", "k2", "gj", "lhs", "trappist"])
            if rng.random() < 0.3:
                params["teff_max"] = rng.choice([3900, 5300])
            if rng.random() < 0.2:
                params["min_p_habitable"] = 0.2
            yield "list", "GET", "/api/planets", params
        else:
            yield "detail", "GET", "/api/planets/" + quote(rng.choice(names)), None


async def mixed_load(base: str, n: int, concurrency: int, names, predict_rows, predict_share, seed) -> dict:
    import httpx

    lat: dict[str, list[float]] = {"list": [], "detail": [], "predict": []}
    status: dict[str, int] = {}
    transport_errors: list[str] = []
    queue: asyncio.Queue = asyncio.Queue()
    for item in _requests(n, names, predict_rows, predict_share, seed):
        queue.put_nowait(item)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:
        async def worker():
            while True:
                try:
                    kind, method, path, arg = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                t0 = time.perf_counter()
                try:
                    if method == "POST":
                        r = await client.post(path, json=arg)
                    else:
                        r = await client.get(path, params=arg)
                    await r.aread()
                except httpx.HTTPError as exc:
                    transport_errors.append(f"{kind}: {type(exc).__name__}")
                    continue
                lat[kind].append(time.perf_counter() - t0)
                key = f"{r.status_code // 100}xx"
                status[key] = status.get(key, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return {"requests": n, "concurrency": concurrency, "wall_s": wall, "throughput_rps": n / wall,
            "status": status, "transport_errors": len(transport_errors),
            "latency_ms": {k: {"n": len(v), "p50": 1e3 * _pct(v, 50), "p95": 1e3 * _pct(v, 95),
                               "p99": 1e3 * _pct(v, 99), "max": 1e3 * max(v) if v else float("nan")}
                           for k, v in lat.items()}}


def _raw(port: int, payload: bytes, read: int = 0, timeout: float = 5.0) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        if read:
            s.recv(read)  # read the start of the response, then drop the connection mid-body


def faults(base: str, port: int, rounds: int = 20) -> dict:
    import httpx

    out = {"timeouts": 0, "disconnects": 0, "partial_requests": 0}
    for _ in range(rounds):
        try:  # a client whose patience (1 ms) runs out before the whole catalog arrives
            httpx.get(f"{base}/api/planets", params={"limit": 10000}, timeout=0.001)
        except httpx.TimeoutException:
            out["timeouts"] += 1
        _raw(port, b"GET /api/planets?limit=10000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", read=512)
        out["disconnects"] += 1
        _raw(port, b"GET /api/planets?limit=10")  # request line never finished
        _raw(port, b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   b"Content-Length: 500\r\n\r\n{\"name\": \"half")  # body never finished
        out["partial_requests"] += 2
    time.sleep(1.0)
    health = httpx.get(f"{base}/api/health", timeout=30)
    page = httpx.get(f"{base}/api/planets", params={"limit": 10}, timeout=30)
    out["healthy_after"] = health.status_code == 200 and page.status_code == 200 and len(page.json()["planets"]) == 10
    return out


def screenshot(base: str, path: Path) -> dict:
    sys.path.insert(0, str(ROOT))
    from tests.serve.browser import browser_missing, explore

    reason = browser_missing()
    if reason:
        return {"skipped": reason}
    with tempfile.TemporaryDirectory() as tmp:
        seen = explore(base, Path(tmp))
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(tmp) / "planet.png", path)  # the page with Kepler-442 b open
    # a second, warm load: the figure a returning user sees
    from tests.serve.browser import make_driver

    driver = make_driver()
    try:
        driver.get(base + "/")
        t0 = time.perf_counter()
        driver.get(base + "/")
        while driver.execute_script("return document.body.dataset.ready") != "1":
            time.sleep(0.01)
        warm_wall = time.perf_counter() - t0
        warm_ready = float(driver.execute_script("return document.body.dataset.readyMs"))
    finally:
        driver.quit()
    return {"page_ready_ms_first": seen["ready_ms"], "page_ready_ms_warm": warm_ready,
            "page_wall_s_warm": warm_wall, "points_drawn": seen["points"], "screenshot": str(path)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--predict-share", type=float, default=0.01, help="share of POST /api/predict requests")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--screenshot", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    ap.add_argument("--catalog", type=Path, default=None, help="serve this catalog CSV (default: the shipped one)")
    args = ap.parse_args()

    import httpx

    from astrobio.world.catalog import catalog_rows

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = Path(args.run) / "serve-benchmark.log"
    cached = (Path(args.run) / "serve-cache").is_dir()
    proc, startup = start_server(args.run, port, args.workers, log, args.catalog)
    try:
        names = [p["name"] for p in httpx.get(f"{base}/api/planets", params={"limit": 10000}, timeout=60).json()["planets"]]
        wanted = set(names[:200])
        rows = [{k: v for k, v in r.items() if v != ""} for r in catalog_rows(args.catalog) if r["name"] in wanted]
        for r in rows:  # the catalog CSV's strings, typed as the API takes them
            for k, v in r.items():
                if k not in ("name", "system", "star_name", "star_spectral_type", "discovery_method", "list"):
                    r[k] = int(float(v)) if k == "discovery_year" else float(v)
        t0 = time.perf_counter()
        single = httpx.post(f"{base}/api/predict", json=rows[0], timeout=120)
        single_s = time.perf_counter() - t0
        result = {"machine": f"{os.cpu_count()} CPUs (shared)", "planets": len(names), "startup_s": startup, "cache_existed": cached,
                  "single_predict_s": single_s, "single_predict_status": single.status_code}
        result["load"] = asyncio.run(mixed_load(base, args.requests, args.concurrency, names, rows,
                                                args.predict_share, args.seed))
        result["faults"] = faults(base, port)
        if args.screenshot:
            result["page"] = screenshot(base, args.screenshot)
        result["server_alive"] = proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(30)
    with open(log) as fh:
        result["log_lines"] = sum(1 for line in fh if "astrobio.serve:" in line)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

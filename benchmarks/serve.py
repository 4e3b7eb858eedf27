"""Load, faults and page load of `astrobio serve`: a real server on loopback, cheap concurrent clients.

    python benchmarks/serve.py RUN [--workers 1 2] [--requests 5000] [--concurrency 50] [--page]
                                   [--screenshot docs/serve_explorer.png] [--out FILE.json]

For each `--workers` count, starts `astrobio serve RUN --workers N` as a subprocess on a free 127.0.0.1
port (building the catalog cache on the first start; `startup_s` is the time to the first healthy
answer, `model_ready_s` to the first answered prediction), then:
1. single predictions: `--single` POST /api/predict of one catalog planet, one at a time (median);
2. mixed load: `--requests` requests from `--concurrency` concurrent keep-alive connections — list pages
   (filters, sorts, offsets), planet details and `--predict-share` POST /api/predict of one planet;
   p50/p95/p99 latency per kind, throughput, 4xx/5xx and transport errors. The clients are raw HTTP/1.1
   on asyncio streams in this one process (no HTTP library: tens of microseconds of CPU per request),
   and the benchmark reports the CPU seconds of the clients and of the server processes beside the
   wall time, so a shared machine's figures say who used the cores. With C requests always in flight,
   latency is about C / throughput (Little's law): `littles_law_ms` is that figure;
3. faults: clients that time out and clients that disconnect mid-response, partial requests; then
   checks the server still answers /api/health and a list;
4. with `--page` (or `--screenshot`): headless Chromium (the browser test's code, tests/serve/browser.py)
   loads the page `--page-loads` times; `ready_ms` is the time from navigation start to the page's own
   marker that the diagram and the table are drawn (body[data-ready]); `--screenshot` also saves the
   page with Kepler-442 b open.
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
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, urlencode

ROOT = Path(__file__).resolve().parents[1]
TEXT_COLUMNS = ("name", "system", "star_name", "star_spectral_type", "discovery_method", "list")


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
        time.sleep(0.1)


def _server_cpu_s(proc: subprocess.Popen) -> float:
    """User + system CPU seconds of the server and its worker processes so far."""
    import psutil

    total = 0.0
    try:
        p = psutil.Process(proc.pid)
        for q in [p] + p.children(recursive=True):
            try:
                t = q.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
    except psutil.NoSuchProcess:
        pass
    return total


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))] if xs else float("nan")


def _summary(xs: list[float]) -> dict:
    return {"n": len(xs), "p50": 1e3 * _pct(xs, 50), "p95": 1e3 * _pct(xs, 95), "p99": 1e3 * _pct(xs, 99),
            "max": 1e3 * max(xs) if xs else float("nan")}


def _requests(n: int, names: list[str], predict_rows: list[dict], predict_share: float, seed: int):
    rng = random.Random(seed)
    sorts = ["p_habitable", "name", "star_teff_k", "instellation_searth", "hz_position"]
    for _ in range(n):
        u = rng.random()
        if u < predict_share:
            yield "predict", "POST", "/api/predict", json.dumps(rng.choice(predict_rows)).encode()
        elif u < predict_share + (1 - predict_share) / 2:
            params = {"sort": rng.choice(sorts), "order": rng.choice(["asc", "desc"]),
                      "limit": rng.choice([25, 50, 100]), "offset": rng.randrange(0, max(1, len(names)))}
            if rng.random() < 0.3:
                params["q"] = rng.choice(["kepler", "toi", "k2", "gj", "lhs", "trappist"])
            if rng.random() < 0.3:
                params["teff_max"] = rng.choice([3900, 5300])
            if rng.random() < 0.2:
                params["min_p_habitable"] = 0.2
            yield "list", "GET", "/api/planets?" + urlencode(params), None
        else:
            yield "detail", "GET", "/api/planets/" + quote(rng.choice(names)), None


class _Connection:
    """One keep-alive HTTP/1.1 connection: a request written as bytes, the response read by Content-Length."""

    def __init__(self, port: int):
        self.port, self.reader, self.writer = port, None, None

    async def request(self, method: str, path: str, body: bytes | None) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode("latin-1") + b"\r\n" + (body or b""))
        headers = await self.reader.readuntil(b"\r\n\r\n")
        status = int(headers[9:12])
        length = None
        for line in headers.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length is None:
            raise ConnectionError("response without Content-Length")
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def mixed_load(port: int, items: list, concurrency: int) -> dict:
    lat: dict[str, list[float]] = {"list": [], "detail": [], "predict": []}
    status: dict[str, int] = {}
    transport_errors: list[str] = []
    queue = iter(items)

    async def worker():
        conn = _Connection(port)
        try:
            for kind, method, path, body in queue:
                t0 = time.perf_counter()
                try:
                    code = await asyncio.wait_for(conn.request(method, path, body), timeout=120)
                except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError) as exc:
                    transport_errors.append(f"{kind}: {type(exc).__name__}")
                    conn.close()
                    continue
                lat[kind].append(time.perf_counter() - t0)
                key = f"{code // 100}xx"
                status[key] = status.get(key, 0) + 1
        finally:
            conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    return {"requests": len(items), "concurrency": concurrency, "wall_s": wall, "throughput_rps": len(items) / wall,
            "littles_law_ms": 1e3 * concurrency * wall / len(items), "status": status,
            "transport_errors": len(transport_errors), "latency_ms": {k: _summary(v) for k, v in lat.items()}}


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


def page_load(base: str, loads: int, screenshot: Path | None) -> dict:
    """Navigation start -> the page's rendered marker, in a fresh headless Chromium per load (cold cache)
    and reloads in one browser (warm cache)."""
    sys.path.insert(0, str(ROOT))
    from tests.serve.browser import browser_missing, explore, make_driver, wait_ready

    reason = browser_missing()
    if reason:
        return {"skipped": reason}
    cold, warm, points = [], [], None
    for _ in range(loads):
        driver = make_driver()
        try:
            driver.get(base + "/")
            seen = wait_ready(driver)
            cold.append(seen["ready_ms"])
            points = seen["points"]
            for _ in range(2):
                driver.get(base + "/")
                warm.append(wait_ready(driver)["ready_ms"])
        finally:
            driver.quit()
    out = {"loads": loads, "ready_ms_cold": cold, "ready_ms_warm": warm,
           "ready_ms_cold_median": statistics.median(cold), "ready_ms_warm_median": statistics.median(warm),
           "points_drawn": points, "goal_ms": 2000}
    if screenshot:
        with tempfile.TemporaryDirectory() as tmp:
            explore(base, Path(tmp))
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(tmp) / "planet.png", screenshot)  # the page with Kepler-442 b open
        out["screenshot"] = str(screenshot)
    return out


def _predict_rows(names: list[str], catalog: Path | None) -> list[dict]:
    """Catalog CSV rows of served planets, typed as POST /api/predict takes them."""
    from astrobio.world.catalog import catalog_rows

    wanted = set(names[:200])
    rows = [{k: v for k, v in r.items() if v != ""} for r in catalog_rows(catalog) if r["name"] in wanted]
    for r in rows:
        for k, v in r.items():
            if k not in TEXT_COLUMNS:
                r[k] = int(float(v)) if k == "discovery_year" else float(v)
    return rows


def bench_workers(args, workers: int) -> dict:
    import httpx

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = Path(args.run) / f"serve-benchmark-w{workers}.log"
    proc, startup = start_server(args.run, port, workers, log, args.catalog)
    t_start = time.perf_counter() - startup
    try:
        names = [p["name"] for p in httpx.get(f"{base}/api/planets", params={"limit": 10000}, timeout=60).json()["planets"]]
        rows = _predict_rows(names, args.catalog)
        first = httpx.post(f"{base}/api/predict", json=rows[0], timeout=600)
        result = {"workers": workers, "planets": len(names), "startup_s": startup,
                  "model_ready_s": time.perf_counter() - t_start, "first_predict_status": first.status_code}
        single = []
        for r in rows[1:1 + args.single]:
            t0 = time.perf_counter()
            httpx.post(f"{base}/api/predict", json=r, timeout=120).raise_for_status()
            single.append(time.perf_counter() - t0)
        result["single_predict_s"] = {"runs": single, "median": statistics.median(single) if single else None}
        items = list(_requests(args.requests, names, rows, args.predict_share, args.seed))
        c0, s0 = time.process_time(), _server_cpu_s(proc)
        result["load"] = asyncio.run(mixed_load(port, items, args.concurrency))
        result["load"]["client_cpu_s"] = time.process_time() - c0
        result["load"]["server_cpu_s"] = _server_cpu_s(proc) - s0
        result["load"]["server_cpu_ms_per_request"] = 1e3 * result["load"]["server_cpu_s"] / args.requests
        result["faults"] = faults(base, port)
        if args.page or args.screenshot:
            result["page"] = page_load(base, args.page_loads, args.screenshot if workers == args.workers[0] else None)
        result["server_alive"] = proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(30)
    with open(log) as fh:
        result["log_lines"] = sum(1 for line in fh if "astrobio.serve:" in line)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--workers", type=int, nargs="+", default=[1], help="server processes, one run each")
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--predict-share", type=float, default=0.01, help="share of POST /api/predict requests")
    ap.add_argument("--single", type=int, default=5, help="single predictions timed one at a time")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--page", action="store_true", help="measure the page load in headless Chromium")
    ap.add_argument("--page-loads", type=int, default=3)
    ap.add_argument("--screenshot", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    ap.add_argument("--catalog", type=Path, default=None, help="serve this catalog CSV (default: the shipped one)")
    args = ap.parse_args()

    cached = (Path(args.run) / "serve-cache").is_dir()
    result = {"machine": f"{os.cpu_count()} CPUs (shared; load average {os.getloadavg()[0]:.1f} at start)",
              "cache_existed": cached, "runs": [bench_workers(args, w) for w in args.workers]}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

"""astrobio.simulation on a real 2-process dask LocalCluster: a planet that raises, a worker killed mid-task.

One cluster serves the module (each worker loads the metabolic models once, ~10 s of CPU); the kill test
runs last because it also checks that closing the cluster leaves no worker process behind.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import psutil
import pytest
from distributed import Client, LocalCluster

from astrobio import simulation
from astrobio.data import RealDataStorage
from astrobio.data.annotation import ComprehensiveDataAnnotationSystem
from astrobio.data.storage import content_hash, run_arrays
from astrobio.world import simulate, survey
from astrobio.world.types import run_id_for

HANG_GUARD_S = 900  # far beyond any honest run on a busy 2-core machine: only a hang reaches it


def test_task_sizes_shrink_towards_the_end_and_cover_every_planet():
    assert simulation.task_sizes(1024, 2, 256) == [256, 192, 144, 108, 81, 61, 46, 34, 26, 19, 16, 16, 16, 9]
    assert simulation.task_sizes(2500, 2, 256)[:6] == [256] * 6  # large batches first (cheaper per planet)
    assert simulation.task_sizes(20, 1, 64) == [16, 4]  # never below MIN_CHUNK but for the rest
    assert simulation.task_sizes(3, 4, 64) == [3]
    assert simulation.task_sizes(0, 2, 64) == []
    assert sum(simulation.task_sizes(40_000, 7, 64)) == 40_000


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c


def _no_hang(fn, *args, **kwargs):
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args, **kwargs).result(timeout=HANG_GUARD_S)


def _ids(store) -> list[str]:
    return [r["run_id"] for r in RealDataStorage(store).list_stored_runs(include_quarantined=True)]


def test_planet_that_raises_is_reported_and_the_others_are_stored(cluster, tmp_path, monkeypatch):
    truths, _ = simulation.true_planets("synthetic", 12, 5, survey.DEFAULT_SURVEY)
    bad = replace(truths[5], planet_mass_earth=-1.0)  # chunk 2 of 3 (chunk=4): its task raises
    planets = [*truths[:5], bad, *truths[6:]]
    monkeypatch.setattr(simulation, "true_planets", lambda *a: (planets, []))
    store = tmp_path / "store"
    summary = _no_hang(simulation.simulate_to_store, store, 12, 5, "demo", chunk=4, progress=False,
                       scheduler=cluster.scheduler_address)
    [failed] = summary["failed"]
    assert failed["run_id"] == run_id_for(bad) and failed["name"] == bad.name
    assert failed["reason"].startswith("InputValidationError: invalid planet_mass_earth=-1.0")
    good = [t for t in planets if t is not bad]
    assert sorted(_ids(store)) == sorted(run_id_for(t) for t in good)
    assert summary["simulated_now"] == 11 and summary["runs"] == 11
    # The failing chunk was re-simulated one planet at a time: same values as simulating its good planets together.
    storage = RealDataStorage(store)
    with Client(cluster) as client:  # on a worker, whose metabolic models are loaded already
        together = client.submit(simulate.simulate_population_runs, [planets[4], planets[6], planets[7]], seed=5,
                                 resolution="demo").result()
    for run in together:
        assert storage.index_row(run.run_id)["content_hash"] == content_hash(run_arrays(run), run.text, run.labels)


def _kill_a_busy_worker(client: Client, store, killed: list[int], stop: threading.Event) -> None:
    """Once the first chunk is recorded, SIGKILL a worker process that is executing a task."""
    while not stop.is_set():
        if RealDataStorage(store).index_path.exists() and len(_ids(store)) >= 3:
            busy = client.run(lambda dask_worker: len(dask_worker.state.executing))
            for addr, n in busy.items():
                if n:
                    pid = client.run(os.getpid, workers=[addr])[addr]
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
        time.sleep(0.05)


def test_worker_killed_mid_task_is_retried_and_rerun_gives_exactly_n_valid_runs(cluster, tmp_path):
    store, n = tmp_path / "store", 24
    killed: list[int] = []
    stop = threading.Event()
    with Client(cluster) as client:
        watcher = threading.Thread(target=_kill_a_busy_worker, args=(client, store, killed, stop), daemon=True)
        watcher.start()
        try:
            summary = _no_hang(simulation.simulate_to_store, store, n, 9, "demo", chunk=3, progress=False,
                               scheduler=cluster.scheduler_address)
        finally:
            stop.set()
            watcher.join()
        assert killed, "no worker was busy to kill: the run finished before the first chunk was seen"
        assert not psutil.pid_exists(killed[0]) or psutil.Process(killed[0]).status() == psutil.STATUS_ZOMBIE
        worker_pids = list(client.run(os.getpid).values())
    assert summary["failed"] == []  # the killed worker's chunk ran again on a worker that lived
    rerun = _no_hang(simulation.simulate_to_store, store, n, 9, "demo", chunk=3, progress=False,
                     scheduler=cluster.scheduler_address)
    assert rerun["simulated_now"] == 0 and rerun["already_stored"] == n
    ids = _ids(store)
    truths, _ = simulation.true_planets("synthetic", n, 9, survey.DEFAULT_SURVEY)
    assert len(ids) == len(set(ids)) == n and set(ids) == {run_id_for(t) for t in truths}
    storage, annotator = RealDataStorage(store), ComprehensiveDataAnnotationSystem()
    for rid in ids:  # valid: complete, annotated, and the content the index promises
        run = storage.load_run(rid)
        annotator.validate(storage.load_annotation(rid), run)
        assert storage.index_row(rid)["content_hash"] == content_hash(run_arrays(run), run.text, run.labels)
    cluster.close()
    deadline = time.monotonic() + 30
    while any(psutil.pid_exists(p) for p in worker_pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(psutil.pid_exists(p) for p in worker_pids), "worker processes outlived their cluster"


def test_scaling_doc_slurm_example_builds_the_cluster(tmp_path):
    """docs/scaling.md's SLURM example, executed as written: the cluster object and its job script, no job."""
    pytest.importorskip("dask_jobqueue", reason="dask-jobqueue is a test extra: pip install -e '.[test]'")
    doc = (Path(__file__).resolve().parents[1] / "docs" / "scaling.md").read_text()
    [block] = [b for b in re.findall(r"```python\n(.*?)```", doc, re.S) if "def slurm_cluster" in b]
    namespace: dict = {}
    exec(compile(block, "docs/scaling.md", "exec"), namespace)
    cluster = namespace["slurm_cluster"]("/opt/astrobio/.venv", str(tmp_path / "logs"))
    try:
        script = cluster.job_script()
        for line in ("#SBATCH -p compute", "#SBATCH -A astrobio", "#SBATCH --cpus-per-task=32", "#SBATCH -t 04:00:00",
                     "#SBATCH --exclusive", "source /opt/astrobio/.venv/bin/activate"):
            assert line in script, script
        assert f"dask_worker {cluster.scheduler_address}" in script and "--nworkers 32" in script
        assert "--nthreads 1" in script
        assert cluster.scheduler_address.startswith("tcp://") and not cluster.workers  # nothing submitted
    finally:
        cluster.close()


def test_a_local_cluster_leaves_the_callers_environment_as_it_was(monkeypatch):
    # distributed's nannies write OMP/MKL/OPENBLAS_NUM_THREADS=1 and MALLOC_TRIM_THRESHOLD_ into the parent's
    # os.environ and leave them; a later torch in the caller (the demo's training) then ran on one thread
    monkeypatch.setenv("MKL_NUM_THREADS", "3")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    with simulation.dask_client(None, 2) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        assert set(client.run(lambda: os.environ.get("OMP_NUM_THREADS")).values()) == {"1"}  # workers keep it
    assert os.environ["MKL_NUM_THREADS"] == "3"
    assert "OMP_NUM_THREADS" not in os.environ and "MALLOC_TRIM_THRESHOLD_" not in os.environ

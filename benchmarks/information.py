"""How much the observer's data says about the class: biosignature detections, a learning curve, a leak audit.

    .venv/bin/python benchmarks/information.py [--store DIR] [--sizes 1000,2000,4000,8000,16000,32000]
        [--n-test 2000] [--workers 2] [--seed 0] [--future-runs 2000] [--out docs/measurements/information.json]

1. Detections: per transit count, the fraction of inhabited planets (class 2) whose biosignature (O2 or O3
   for oxygenic, CH4 for methanogenic biospheres) the observer's retrieval (`world/retrieval.py`) detects
   at >= 3 and >= 5 sigma on the noisy spectrum, for the `jwst` survey design and the `future` one, and
   both designs' class balance.
2. Learning curve: the LightGBM baseline of `evaluation/baselines.py` (observed values + binned spectrum +
   TF-IDF of the observing log, the features of `evaluation/features.py`) trained on 1k -> 32k runs, beside
   the oracle (LightGBM on the true parameters) on the same runs; macro-F1 and accuracy on one held-out test
   set, AUROC of inhabited vs habitable among the test planets that are one of the two. The plateau of the
   observer's curve estimates the ceiling of the 3-class task on these data; the oracle's is the ceiling
   with perfect knowledge.
3. Leak audit: every sentence template of the observing log (numbers and names replaced) with its support
   and class precision (the largest share of one class among the runs whose log has it). A template above
   95% precision (support >= `--min-support`) is a leak unless it reports a >= 5 sigma result.

Without `--store`, the runs are simulated exactly as `astrobio simulate` does (`simulate_population_runs`) on a
dask LocalCluster; workers return only the baselines' table rows, not the datacubes and graphs; the test set is
the last `--n-test` runs. With `--store DIR` (a store written by `astrobio simulate`, its survey `--survey`), the
detections, the learning curve and the leak audit come from that store's runs (workers read chunks of it), split
exactly as `benchmarks/quality.py` splits it: a test set of >= `--n-test` runs by system hash, and nested
training subsets in the pool's seeded system order, so this curve's LightGBM and quality.py's seed-`--seed`
LightGBM rows are the same fits. The `future` design is still simulated (`--future-runs`, 0 skips it).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import platform
import re
import time
from collections import Counter, defaultdict
from dataclasses import fields
from pathlib import Path

# Before numpy, LightGBM or torch start OpenMP: on a loaded machine spinning OpenMP threads cost LightGBM
# (n_jobs=2) ~10x its CPU time (4000 x 170 rows, 300 trees at load 10: 71 s CPU spinning, 7 s passive).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

# benchmarks/quality.py: one split of a store, one way to join tables
from quality import choose_test, concat_tables, first_systems, pool_order

BIOSIGNATURES = {"oxygenic": ("O2", "O3"), "methanogenic": ("CH4",)}
PRECISION_LIMIT = 0.95
# Templates that report a >= 5 sigma result: a detection, or the exclusion of a clear atmosphere.
FIVE_SIGMA_TEMPLATE = re.compile(r"absorption near .* at # sigma|is detected \(# sigma\)|#-sigma detection|"
                                 r"excluded at # sigma|would have shown them at # sigma")


def _keep(runs):
    """What the benchmark keeps of planet runs: their table rows and per-run facts."""
    from astrobio.evaluation.features import table_from_runs

    meta = [{"biosphere": r.truth.biosphere, "n_transits": int(r.truth.n_transits),
             "biosignature_sigma": max((r.extras["detection_sigma"].get(g, 0.0)
                                        for g in BIOSIGNATURES.get(r.truth.biosphere, ())), default=0.0),
             "name": r.truth.name, "system": r.truth.system} for r in runs]
    return table_from_runs(runs), meta


def _chunk(abiotic, seed: int, survey_name: str):
    """Worker: simulate one chunk and keep what the benchmark needs."""
    from astrobio.world.simulate import simulate_population_runs

    return _keep(simulate_population_runs(abiotic, seed=seed, resolution="demo", survey_name=survey_name))


def _stored_chunk(store: str, run_ids: list[str]):
    """Worker: read one chunk of a store and keep what the benchmark needs."""
    from astrobio.data import RealDataStorage

    storage = RealDataStorage(store)
    try:
        return _keep([storage.load_run(r) for r in run_ids])
    finally:
        storage.close()


def _take(table, idx):
    from astrobio.evaluation.features import RunTable

    idx = np.asarray(idx)
    return RunTable(**{f.name: ([getattr(table, f.name)[i] for i in idx] if isinstance(getattr(table, f.name), list)
                                else getattr(table, f.name)[idx]) for f in fields(RunTable)})


def simulate_tables(n: int, seed: int, survey_name: str, client, chunk: int = 128):
    """(RunTable, per-run meta) of `n` synthetic runs of one survey design."""
    from distributed import as_completed

    from astrobio.world import survey

    abiotic = survey.sample_abiotic_population(n, seed, survey.survey_design(survey_name))
    futures = {client.submit(_chunk, abiotic[i:i + chunk], seed, survey_name, pure=False): i
               for i in range(0, n, chunk)}
    parts = {}
    for fut in as_completed(futures):
        parts[futures[fut]] = fut.result()
        done = sum(len(p[1]) for p in parts.values())
        print(f"  {survey_name}: {done}/{n} runs", end="\r", flush=True)
    print()
    ordered = [parts[k] for k in sorted(parts)]
    return concat_tables([p[0] for p in ordered]), sum((p[1] for p in ordered), [])


def store_tables(store: Path, client, max_systems: int, chunk: int = 256):
    """(RunTable, per-run meta) of the runs of a store's first `max_systems` systems (0: all; quarantined runs
    left out), in run-id order."""
    from distributed import as_completed

    from astrobio.data import RealDataStorage

    index = RealDataStorage(store).index_columns(("run_id", "system"))
    ids = sorted(first_systems(dict(zip(index["run_id"], index["system"])), max_systems))
    futures = {client.submit(_stored_chunk, str(store), ids[i:i + chunk], pure=False): i
               for i in range(0, len(ids), chunk)}
    parts = {}
    for fut in as_completed(futures):
        parts[futures[fut]] = fut.result()
        print(f"  {store}: {sum(len(p[1]) for p in parts.values())}/{len(ids)} runs read", end="\r", flush=True)
    print()
    ordered = [parts[k] for k in sorted(parts)]
    return concat_tables([p[0] for p in ordered]), sum((p[1] for p in ordered), [])


def store_split(table, meta, n_test: int, test_from_systems: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(pool rows in the seed's system order, test rows): `benchmarks/quality.py`'s split of the same store."""
    systems = dict(zip(table.run_ids, (m["system"] for m in meta)))
    test, _ = choose_test(systems, test_from_systems, n_test)
    position = {rid: i for i, rid in enumerate(table.run_ids)}
    pool = [rid for rid in table.run_ids if rid not in test]
    return (np.array([position[r] for r in pool_order(pool, systems, seed)]),
            np.array([position[r] for r in table.run_ids if r in test]))


def detections(table, meta) -> dict:
    """Per transit count: inhabited planets and the fraction with the biosignature at >= 3 / >= 5 sigma."""
    rows = defaultdict(list)
    for y, m in zip(table.y, meta):
        if int(y) == 2:
            rows[m["n_transits"]].append(m["biosignature_sigma"])
    return {str(k): {"inhabited": len(v), "fraction_3sigma": float(np.mean(np.array(v) >= 3.0)),
                     "fraction_5sigma": float(np.mean(np.array(v) >= 5.0))} for k, v in sorted(rows.items())}


def class_balance(table) -> dict:
    counts = np.bincount(table.y, minlength=3)
    return {"runs": int(len(table)), "counts": counts.tolist(), "fractions": (counts / max(len(table), 1)).tolist()}


def _scores(model, train, test) -> dict:
    from astrobio.metrics import accuracy_macro_f1, binary_auroc

    p = model.fit(train).predict_proba(test)
    out = accuracy_macro_f1(test.y, p.argmax(1))
    life = np.isin(test.y, (1, 2))
    out["auroc_inhabited_vs_habitable"] = binary_auroc(test.y[life] == 2, p[life, 2] / (p[life, 1] + p[life, 2] + 1e-12))
    return out


def learning_curve(table, sizes: list[int], pool: np.ndarray, test: np.ndarray, seed: int) -> list[dict]:
    """LightGBM (observer) and oracle trained on the first n rows of `pool`, scored on the rows `test`."""
    from astrobio.evaluation.baselines import LightGBMBaseline, OracleBaseline

    test = _take(table, test)
    rows = []
    for n in sizes:
        if n > len(pool):
            raise SystemExit(f"training size {n} exceeds the {len(pool)} runs outside the test set")
        train = _take(table, pool[:n])
        t0 = time.perf_counter()
        row = {"train_runs": n, "observer": _scores(LightGBMBaseline(seed), train, test),
               "oracle": _scores(OracleBaseline(seed), train, test)}
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
        print(f"  n={n}: observer macro-F1 {row['observer']['macro_f1']:.3f}, oracle {row['oracle']['macro_f1']:.3f}")
    return rows


def _template(sentence: str, names: tuple[str, str]) -> str:
    s = sentence.replace(names[0], "<planet>").replace(names[1], "<system>")
    # numbers -> "#", but not the digits of a formula or spectral subtype (CO2, O3, M4V stay)
    return re.sub(r"(?<![A-Za-z])[-+~]?\d[\d,.]*(e[-+]?\d+)?", "#", s).strip()


def leak_audit(table, meta, min_support: int) -> dict:
    """Every sentence template with its support and class precision; the leaks among them."""
    by_template: dict[str, Counter] = defaultdict(Counter)
    for text, y, m in zip(table.texts, table.y, meta):
        for sentence in {_template(s, (m["name"], m["system"])) for s in re.split(r"(?<=\.)\s+", text) if s}:
            by_template[sentence][int(y)] += 1
    phrases = []
    for t, c in by_template.items():
        support = sum(c.values())
        cls, top = c.most_common(1)[0]
        phrases.append({"template": t, "support": support, "class": cls, "precision": top / support,
                        "reports_5sigma": bool(FIVE_SIGMA_TEMPLATE.search(t))})
    phrases.sort(key=lambda r: (-r["precision"], -r["support"]))
    leaks = [p for p in phrases if p["support"] >= min_support and p["precision"] > PRECISION_LIMIT
             and not p["reports_5sigma"]]
    return {"min_support": min_support, "precision_limit": PRECISION_LIMIT, "templates": len(phrases),
            "leaks": leaks, "phrases": phrases}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", type=Path, help="read the runs of this store instead of simulating them")
    ap.add_argument("--survey", default="jwst", help="the survey design of --store's runs")
    ap.add_argument("--table-cache", type=Path, help="--store: also write its runs' table here (for quality.py)")
    ap.add_argument("--max-systems", type=int, default=0, help="--store: only its first N systems (as quality.py)")
    ap.add_argument("--test-from-systems", type=int, default=0,
                    help="--store: the test set from the first N systems only (as quality.py)")
    ap.add_argument("--sizes", default="1000,2000,4000,8000,16000,32000")
    ap.add_argument("--n-test", type=int, default=2000)
    ap.add_argument("--future-runs", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-support", type=int, default=20)
    ap.add_argument("--out", type=Path, default=Path("docs/measurements/information.json"))
    args = ap.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))

    from distributed import Client, LocalCluster

    from astrobio.io import atomic_write, git_revision, write_json
    from astrobio.world import metabolism, survey

    main_survey = args.survey if args.store else "jwst"
    tables = {}
    t0 = time.perf_counter()
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True) as cluster, \
            Client(cluster) as client:
        client.run(metabolism.warm_up)
        if args.store:
            tables[main_survey] = store_tables(args.store, client, args.max_systems)
            if args.table_cache:  # quality.py --table-cache reads its baselines' rows from it instead of the store
                with atomic_write(args.table_cache, "wb") as f:
                    pickle.dump({"store": str(args.store.resolve()), "table": tables[main_survey][0]}, f)
        else:
            tables[main_survey] = simulate_tables(sizes[-1] + args.n_test, args.seed, main_survey, client)
        if args.future_runs and main_survey != "future":
            tables["future"] = simulate_tables(args.future_runs, args.seed, "future", client)
    sim_seconds = time.perf_counter() - t0
    result = {
        "machine": f"{platform.node()} ({platform.processor() or platform.machine()}), shared",
        "git_revision": git_revision(), "seed": args.seed, "workers": args.workers,
        "source": {"store": str(args.store.resolve()), "survey": main_survey, "runs": len(tables[main_survey][1]),
                   "first_systems": args.max_systems or None,
                   "test_from_first_systems": args.test_from_systems or None} if args.store else "simulated",
        "simulation_seconds" if not args.store else "read_and_simulate_seconds": sim_seconds,
        "surveys": {name: {"design": {f.name: getattr(d, f.name) for f in fields(d)}}
                    for name, d in survey.SURVEYS.items()},
    }
    for name, (table, meta) in tables.items():
        result["surveys"][name].update(class_balance=class_balance(table), detections=detections(table, meta))
        print(f"detections ({name}):", result["surveys"][name]["detections"])
    table, meta = tables[main_survey]
    if args.store:
        pool, test = store_split(table, meta, args.n_test, args.test_from_systems, args.seed)
    else:
        pool, test = np.arange(len(table) - args.n_test), np.arange(len(table) - args.n_test, len(table))
    result["learning_curve_test_runs"] = int(len(test))
    result["learning_curve_test_set_sha256"] = hashlib.sha256("\n".join(sorted(table.run_ids[i] for i in test))
                                                              .encode()).hexdigest()
    result["learning_curve"] = learning_curve(table, sizes, pool, test, args.seed)
    audit = leak_audit(table, meta, args.min_support)
    result["leak_audit"] = audit
    print(f"leak audit: {audit['templates']} templates, {len(audit['leaks'])} above {PRECISION_LIMIT:.0%} "
          f"precision without a 5-sigma result")
    for leak in audit["leaks"][:10]:
        print(f"  {leak['precision']:.3f} class {leak['class']} (n={leak['support']}): {leak['template']}")
    write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

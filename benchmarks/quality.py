"""Learning curves side by side (issue 10, item 2): the deep model, LightGBM, the rule baselines and the oracle,
trained on growing subsets of ONE simulated store and scored on one fixed test set.

    .venv/bin/python benchmarks/quality.py --store DIR [--sizes 1000,4000,16000,32000] [--seeds 0,1,2]
        [--n-test 3000] [--preset small] [--budget-s 100,250,600,900 | --budget-steps N,...]
        [--methods deep,lightgbm,rules,oracle] [--members K]
        [--work /tmp/quality] [--out docs/measurements/quality.json]

Split, by planetary system (planets of one star never straddle two sets): the store's systems are hashed as the
package's own splits are (`astrobio.data.dataset.split_of`, split seed `SPLIT_SEED`) with fractions
(1 - f, 0, f), f chosen so the test set holds >= `--n-test` runs; everything else is the training pool.
`--max-systems N` keeps only the store's first N systems (a store still being simulated has a complete prefix)
and `--test-from-systems M` draws the test set from the first M systems only, so a later leg on the grown store
(a larger `--max-systems`) scores the same test set with a larger pool. For each
seed, the pool's systems are shuffled by that seed and the first `n_train` runs in that order are the training
subset (so a seed's subsets are nested). Every method sees the same `n_train` labelled runs, by one protocol: the
last systems of the subset (10%, at most `--max-val` runs) are a validation slice, the rest is fitted, and a
temperature (Guo et al. 2017) fitted on the slice scales the test probabilities (log-probabilities as logits
for the baselines); the uncalibrated log-loss, ECE and macro-F1 are kept beside the calibrated scores.
- deep: the unified multi-modal system (`--preset`) through the real trainer (`astrobio.training.Trainer`),
  early stopping on the slice's macro-F1 (patience), the best checkpoint scored. Its training stops at a CPU-time
  budget per size (`--budget-s`, process CPU seconds, measured by a watchdog that sends the trainer's documented
  clean-stop signal) or on the plateau, whichever is first. The cosine schedule is planned on
  `budget x --steps-per-cpu-s` steps. `--budget-steps` (one per size) gives a fixed step budget instead: the
  cosine runs to exactly those steps and no CPU budget applies, so rows compare across machines (a CPU-second
  budget buys ~half the steps on a machine twice as slow). Normalisation statistics and the tokenizer are those
  of the store's hash train split (never a test run; `PlanetRunDataset` writes them beside the store as
  `astrobio train` does), taken once and saved in `--work` so every leg uses the same.
- lightgbm: `LightGBMBaseline` (observed values + binned spectrum + TF-IDF of the observing log).
- lightgbm_reading: the same with the observer's spectrum reading (the retrieval's detection significances and
  abundances), which the deep model's fusion also tokenizes: the comparison on exactly the deep model's numbers.
- rules: the four rule baselines of `evaluation/baselines.py` (calibrated by the fitted runs' class frequencies).
- oracle: LightGBM on the true planet parameters (not observable; the perfect-knowledge ceiling).
Metrics (`astrobio.metrics`): accuracy, macro-F1, log-loss, Brier, ECE, AUROC habitable-or-inhabited
vs not, AUROC inhabited vs habitable, overall and per transit stratum (`metrics.transit_stratum`); and
`macro_f1_decision`: the macro-F1 of argmax(w * p) with class weights w fitted on the validation slice
(`metrics.fit_macro_f1_weights`), the same rule for every method (argmax maximises accuracy, not macro-F1);
per-class F1; and `macro_f1_habitable_revealed` / `macro_f1_inhabited_revealed`: the macro-F1 left when the true
answer to one of the label's two questions is given (`metrics.reveal_answer`), which says where a method loses.

`--members K` (K > 1) turns deep, its ablations, lightgbm and lightgbm_reading into ensembles: K models fitted on
the seed's subset (member k seeded seed + 1000 k, so member 0 is the single model), scored on their mean
probabilities by the same protocol, as rows '<method>_ensembleK' with the members' own scores beside; each
finished member is kept in `--work`/members, so a killed leg resumes member by member.

Each leg records what ran it (`leg_environment`: git revision, a digest of the imported package source, library
versions, CPU model, torch's SIMD kernels), the digest of its data state and a digest of the store's run contents
(ids and content hashes): the test set's sha256 names the runs, not their bits, and a store re-simulated on
another CPU holds the same runs with different last bits (docs/results.md, 2026-12-07).

It resumes: rows already in `--out` (same store, same test set) are kept and skipped, so it can run in legs
(e.g. `--methods lightgbm,rules,oracle` first, then `--methods deep --sizes 1000,4000`). The figure
(`--out` with .png) shows macro-F1 and log-loss against n_train, median over seeds with the seeds' range, one line
per method, and the observer ceiling estimate (the plateau of the LightGBM curve).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import signal
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

# Before numpy, LightGBM or torch start OpenMP: on a loaded machine spinning OpenMP threads cost LightGBM
# (n_jobs=2) ~10x its CPU time (4000 x 170 rows, 300 trees at load 10: 71 s CPU spinning, 7 s passive).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

SPLIT_SEED = 20261201  # the test set's hash seed: fixed, so every leg and every seed scores the same test runs
SPLIT_MARGIN = 1.05  # f = margin * n_test / N: the hash split is random in size, the test set must reach n_test
ABLATIONS = tuple(f"deep_without_{m}" for m in ("datacube", "graph", "spectrum", "text"))  # world.types.MODALITIES
METHODS = ("deep", *ABLATIONS, "lightgbm", "lightgbm_reading", "rules", "oracle")
ENSEMBLABLE = ("deep", *ABLATIONS, "lightgbm", "lightgbm_reading")  # the methods --members applies to
MEMBER_SEED_STRIDE = 1000  # member k of a seed's ensemble is seeded seed + 1000 k (member 0 is the seed's model)
SCORES = ("accuracy", "macro_f1", "log_loss", "brier", "ece", "auroc_habitable", "auroc_inhabited",
          "macro_f1_decision", "macro_f1_habitable_revealed", "macro_f1_inhabited_revealed")


# ------------------------------------------------------------------------------------------ split

def test_by_hash(systems: dict[str, str], fractions: tuple[float, float, float]) -> set[str]:
    """The test runs: those whose system `split_of` puts in "test" (what `PlanetRunDataset(..., "test")` serves)."""
    from astrobio.data.dataset import split_of

    return {rid for rid, s in systems.items() if split_of(s, SPLIT_SEED, fractions) == "test"}


def split_fractions(systems: dict[str, str], n_test: int) -> tuple[float, float, float]:
    """(1 - f, 0, f): the smallest f on a 10% ladder from margin * n_test / N whose test split holds >= n_test runs."""
    n = len(systems)
    if n_test >= n:
        raise SystemExit(f"--n-test {n_test} needs a store of more than {n_test} runs (this one has {n})")
    f = min(SPLIT_MARGIN * n_test / n, 0.9)
    while len(test_by_hash(systems, (1.0 - f, 0.0, f))) < n_test and f < 0.9:
        f = min(f * 1.1, 0.9)
    return (1.0 - f, 0.0, f)


def first_systems(systems: dict[str, str], max_systems: int) -> dict[str, str]:
    """The runs of the first `max_systems` systems in name order (0: all). The survey numbers its systems in
    order and a store is written roughly in that order, so a store still being simulated has a complete prefix."""
    if not max_systems:
        return dict(systems)
    keep = set(sorted(set(systems.values()))[:max_systems])
    return {rid: s for rid, s in systems.items() if s in keep}


def choose_test(systems: dict[str, str], test_from_systems: int, n_test: int) -> tuple[set[str], list[float]]:
    """(test run ids, fractions): the hash split's test runs among the first `test_from_systems` systems (0: all),
    at least `n_test` of them. Fixing that prefix fixes the test set while the pool around it grows."""
    first = first_systems(systems, test_from_systems)
    fractions = split_fractions(first, n_test)
    return test_by_hash(first, fractions), list(fractions)


def pool_order(pool_ids: list[str], systems: dict[str, str], seed: int) -> list[str]:
    """The pool's runs with their systems in the seed's random order: the first n are the seed's n-run subset."""
    by_system: dict[str, list[str]] = {}
    for rid in sorted(pool_ids):
        by_system.setdefault(systems[rid], []).append(rid)
    names = sorted(by_system)
    return [rid for i in np.random.default_rng(seed).permutation(len(names)) for rid in by_system[names[i]]]


def subset_ids(pool_ids: list[str], systems: dict[str, str], n_train: int, seed: int,
               max_val: int) -> tuple[list[str], list[str]]:
    """(fit ids, val ids) of the seed's `n_train`-run subset; val = its last systems, about 10% of it (at most
    `max_val` runs), so no system is in both."""
    runs = pool_order(pool_ids, systems, seed)
    if n_train > len(runs):
        raise SystemExit(f"n_train {n_train} exceeds the training pool ({len(runs)} runs)")
    chosen = runs[:n_train]
    cut = n_train - min(max(int(round(0.1 * n_train)), 1), max_val)
    while cut > 0 and systems[chosen[cut - 1]] == systems[chosen[cut]]:
        cut -= 1
    return chosen[:cut], chosen[cut:]


# ------------------------------------------------------------------------------------------ scoring

def scores(y: np.ndarray, probs: np.ndarray, n_transits: np.ndarray) -> dict:
    """The SCORES overall and per transit stratum (the package's metrics and strata)."""
    from astrobio import metrics as M

    def pick(y: np.ndarray, probs: np.ndarray) -> dict:
        m = M.classification_metrics(y, probs)
        # where the macro-F1 is lost: the score left when one of the label's two questions is answered truly
        revealed = M.revealed_macro_f1(y, probs) if len(y) else dict.fromkeys(M.QUESTIONS, float("nan"))
        return {"n": m["n"], "accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "log_loss": m["log_loss"],
                "brier": m["brier"], "ece": m["ece"], "auroc_habitable": m["auroc_habitable_vs_not"],
                "auroc_inhabited": m["auroc_inhabited_vs_habitable"],
                "f1_per_class": {c: v["f1"] for c, v in m["per_class"].items()},
                **{f"macro_f1_{q}_revealed": v for q, v in revealed.items()}}

    strata = np.array([M.transit_stratum(int(k)) for k in n_transits])
    out = pick(y, probs)
    out["strata"] = {s: pick(y[strata == s], probs[strata == s]) for s in sorted(set(strata.tolist()))}
    return out


# ------------------------------------------------------------------------------------------ deep model

def _collate_without(collate, drop: tuple[str, ...], items):
    return collate(items).subset(drop)


class RunSubset:
    """Some runs of a `PlanetRunDataset`, served with its statistics and tokenizer (what the trainer and
    `predict_dataset` ask of a dataset: items, `collate_fn`, `data_state`, `run_ids`)."""

    def __init__(self, dataset, run_ids: list[str], drop: tuple[str, ...] = ()):
        position = {rid: i for i, rid in enumerate(dataset.run_ids)}
        self.dataset, self.run_ids, self.drop = dataset, list(run_ids), tuple(drop)
        self.indices = [position[r] for r in self.run_ids]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        return self.dataset[self.indices[i]]

    def collate_fn(self):
        """The dataset's collate; with `drop`, every batch loses those modalities (`MultiModalBatch.subset`), so
        a model trained on this subset never sees them: the retrained ablation of issue 10, item 3."""
        collate = self.dataset.collate_fn()
        return partial(_collate_without, collate, self.drop) if self.drop else collate

    def data_state(self):
        return self.dataset.data_state()


def all_runs(store: Path, work: Path, fractions: list[float], cache_mb: float):
    """(every stored run as one `PlanetRunDataset`, its data state). ONE data state (normalisation statistics and
    tokenizer) serves every run: that of the store's hash train split with `fractions` (no test run in it),
    computed by the first leg and saved in `work`, so legs started later (the store still growing) normalise
    exactly alike."""
    import json

    from astrobio.data import PlanetRunDataset
    from astrobio.io import write_json

    path, key = work / "data_state.json", {"store": str(store.resolve()), "fractions": list(fractions)}
    saved = json.loads(path.read_text()) if path.is_file() else {}
    if saved.get("key") == key:
        state = saved["state"]
    else:
        state = PlanetRunDataset(store, "train", seed=SPLIT_SEED, split_fractions=fractions).data_state()
        work.mkdir(parents=True, exist_ok=True)
        write_json(path, {"key": key, "state": state})
    # every run in one "train" split, served with that state; the item cache keeps the test runs between models
    # and, when it holds the whole subset (~134 KiB an item on the demo grid), spares later epochs the HDF5 reads
    # that would otherwise count against the CPU budget
    runs = PlanetRunDataset(store, "train", seed=SPLIT_SEED, split_fractions=(1.0, 0.0, 0.0), like=state,
                            cache_mb=cache_mb)
    return runs, state


class CpuBudget:
    """Ends a `Trainer.fit` once this process has used `seconds` of CPU time (all threads), through the trainer's
    clean stop on SIGTERM (finish the step, final evaluation, checkpoints). A wall-clock budget would give a row
    fewer steps whenever other jobs share the 2 cores; CPU seconds are what the row consumed.
    Our own SIGTERM handler is in place around fit, so a signal that lands after fit returned is ignored."""

    def __init__(self, seconds: float):
        self.seconds, self.fired, self._done = seconds, False, threading.Event()

    def __enter__(self) -> "CpuBudget":
        self._previous = signal.signal(signal.SIGTERM, self._late)
        self.start = time.process_time()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        self.used = time.process_time() - self.start
        signal.signal(signal.SIGTERM, self._previous)

    def _watch(self) -> None:
        while not self._done.wait(0.5):
            if time.process_time() - self.start > self.seconds:
                self.fired = True
                os.kill(os.getpid(), signal.SIGTERM)
                return

    def _late(self, signum, frame) -> None:
        if not self.fired:  # a real SIGTERM from outside, between fit's handlers: stop the benchmark
            raise SystemExit(143)


def teacher_targets(paths, weight: float):
    """(run_ids, labels [B] ints) → soft targets [B, 3] float32: (1 - weight) one-hot + weight × the teacher's
    posterior, read from `ceiling.py --teacher-out` files. A run the files lack is an error (a silent one-hot
    would dilute the experiment)."""
    if not 0.0 <= weight <= 1.0:
        raise SystemExit(f"--teacher-weight: {weight}, expected 0 .. 1")
    table: dict[str, np.ndarray] = {}
    for p in paths:
        with np.load(p) as z:
            table.update(zip(z["run_ids"].tolist(), z["probs"].astype(np.float32)))

    def targets(run_ids, labels) -> np.ndarray:
        missing = [r for r in run_ids if r not in table]
        if missing:
            raise SystemExit(f"--teacher: no posterior for run {missing[0]} ({len(missing)} in the batch)")
        q = np.stack([table[r] for r in run_ids])
        return (1.0 - weight) * np.eye(q.shape[1], dtype=np.float32)[np.asarray(labels)] + weight * q

    return targets


def distilled(out: dict, logits, q, loss_config) -> dict:
    """`compute_multimodal_loss`'s output with its classification term replaced by the cross-entropy to q."""
    import torch

    soft = -(q * torch.log_softmax(logits.float(), dim=-1)).sum(-1).mean()
    out = dict(out)
    out["total"] = out["total"] + loss_config.classification_weight * (soft - out["classification"])
    out["classification"] = soft
    return out


def train_deep(runs, train_ids, val_ids, test_ds, test_table, args, seed: int, budget: tuple[float, int],
               work: Path, drop: tuple[str, ...] = (), soft=None) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """Train the system on `train_ids` (early stopping and temperature on `val_ids`) and score it on `test_ds`;
    with `drop`, train, validate and test without those modalities. `budget`: (CPU seconds, steps); a step
    budget > 0 plans the schedule on it and lifts the CPU budget. `seed` draws the initial weights and the batch
    order (the subset is the caller's). `soft` (`teacher_targets`): the class loss of the fit runs is the
    cross-entropy to their soft targets. Returns the row, the uncalibrated validation probabilities, the validation
    labels and the uncalibrated test probabilities."""
    import shutil

    import torch

    from astrobio import metrics as M
    from astrobio.evaluation.inference import predict_dataset
    from astrobio.models import SystemConfig, UnifiedMultiModalSystem, compute_multimodal_loss
    from astrobio.training import TrainConfig, Trainer, load_checkpoint

    # a row is trained in one go, in a directory of its own (legs may run side by side); a killed leg's is left
    work.mkdir(parents=True, exist_ok=True)
    out_dir = Path(tempfile.mkdtemp(dir=work, prefix=f"deep-n{len(train_ids) + len(val_ids)}-seed{seed}"
                                    f"{''.join('-no-' + m for m in drop)}-"))
    budget_s, budget_steps = budget
    steps = budget_steps or max(int(budget_s * args.steps_per_cpu_s), 50)
    given = {k: v for k, v in (("lr", args.lr), ("batch_size", args.batch_size), ("eval_every", args.eval_every),
                                ("log_every", args.eval_every)) if v}  # 0: the preset's own
    cfg = TrainConfig.for_preset(args.preset, seed=seed, max_steps=steps, **given, patience=args.patience,
                                 select_on=args.select_on, tracking="none", warmup_steps=min(20, steps // 10),
                                 spectrum_head_weight=args.spectrum_head_weight)
    system_config = SystemConfig.from_name(cfg.preset, loss=cfg.loss_config())
    torch.manual_seed(seed)  # the seed draws the initial weights too
    model = UnifiedMultiModalSystem(system_config)

    def loss_fn(outputs, batch):
        out = compute_multimodal_loss(outputs, batch, system_config.loss)
        if soft is not None and model.training:  # validation keeps the true labels' loss
            q = torch.from_numpy(soft(batch.run_ids, batch.labels.cpu().numpy())).to(outputs["logits"].device)
            out = distilled(out, outputs["logits"], q, system_config.loss)
        return out

    train, val = RunSubset(runs, train_ids, drop), RunSubset(runs, val_ids, drop)
    trainer = Trainer(model, loss_fn, train, val, cfg, out_dir)
    t0 = time.perf_counter()
    with CpuBudget(float("inf") if budget_steps else budget_s) as watchdog:
        summary = trainer.fit()
    wall = time.perf_counter() - t0
    if summary["stop_reason"] == "sigterm" and not watchdog.fired:  # stopped from outside: not a row to keep
        raise SystemExit(143)
    model.load_state_dict(load_checkpoint(out_dir / "checkpoints" / "best.pt")["model"])
    model.eval()
    v = predict_dataset(model, val, batch_size=64, drop=drop)
    t = predict_dataset(model, test_ds, batch_size=64, drop=drop)
    if not np.array_equal(t["labels"], test_table.y):
        raise SystemExit("the test dataset and the test table disagree on the labels (order?)")
    probs_val, probs_test = M.softmax(v["logits"]), M.softmax(t["logits"])
    row = calibrated_scores(probs_val, v["labels"], probs_test, test_table)
    row["training"] = {"preset": cfg.preset, "batch_size": cfg.batch_size, "planned_steps": steps,
                       "steps": summary["steps"], "best_step": summary["best_step"],
                       "stop_reason": "cpu_budget" if watchdog.fired else summary["stop_reason"],
                       "samples_seen": summary["samples_seen"], "epochs": summary["samples_seen"] / len(train),
                       "budget_cpu_s": None if budget_steps else budget_s,
                       "budget_steps": budget_steps or None, "cpu_s": watchdog.used, "wall_s": wall,
                       "best_val_macro_f1": summary["best_val_macro_f1"], "select_on": cfg.select_on,
                       "without": list(drop),
                       "teacher": [str(p) for p in args.teacher] if soft is not None else [],
                       "teacher_weight": args.teacher_weight if soft is not None else None,
                       "spectrum_head_weight": args.spectrum_head_weight,
                       "n_fit": len(train_ids), "n_val": len(val_ids), "torch_threads": torch.get_num_threads()}
    shutil.rmtree(out_dir, ignore_errors=True)  # checkpoints of a finished row are not kept (disk)
    return row, probs_val, v["labels"], probs_test


def cached_member(path: Path, fit_member) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """One ensemble member's (row, validation probabilities, validation labels, test probabilities): read from
    `path` (an .npz a killed or earlier leg wrote), else `fit_member()` and written there atomically."""
    import json

    from astrobio.io import atomic_path

    if path.is_file():
        with np.load(path) as z:
            return json.loads(str(z["row"])), z["probs_val"], z["y_val"], z["probs_test"]
    row, probs_val, y_val, probs_test = fit_member()
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, row=json.dumps(row), probs_val=probs_val, y_val=y_val, probs_test=probs_test)
    return row, probs_val, y_val, probs_test


def ensemble_row(members: list[tuple], test) -> dict:
    """Scores of the members' mean probabilities (a deep ensemble, Lakshminarayanan et al. 2017), by the same
    protocol as one model: a temperature fitted on the mean validation probabilities scales the mean test
    probabilities. Every member was fitted on the same runs; their own scores are kept beside."""
    rows, probs_val, y_val, probs_test = zip(*members)
    if any(not np.array_equal(y, y_val[0]) for y in y_val):
        raise SystemExit("ensemble members disagree on the validation labels (order?)")
    row = calibrated_scores(np.mean(probs_val, axis=0), y_val[0], np.mean(probs_test, axis=0), test)
    row["members"] = [{"seed": r["member_seed"], "macro_f1": r["macro_f1"], "log_loss": r["log_loss"],
                       "ece": r["ece"]} for r in rows]
    row["cpu_s"] = sum(r.get("cpu_s") or r.get("training", {}).get("cpu_s", 0.0) for r in rows)
    if "training" in rows[0]:
        row["training"] = {"members": [r["training"] for r in rows], "without": rows[0]["training"]["without"],
                           "n_fit": rows[0]["training"]["n_fit"], "n_val": rows[0]["training"]["n_val"]}
    return row


# ------------------------------------------------------------------------------------------ baselines

def calibrated_scores(probs_val, y_val, probs_test, test) -> dict:
    """Scores of test probabilities after a temperature fitted on the validation slice (log-probabilities as
    logits), the deep model's protocol; the uncalibrated log-loss, ECE and macro-F1 beside them."""
    from astrobio import metrics as M

    def logits(p):
        return np.log(np.clip(p, 1e-12, None))

    temperature = M.fit_temperature(logits(probs_val), y_val)
    calibrated = M.softmax(logits(probs_test), temperature)
    row = scores(test.y, calibrated, test.n_transits)
    raw = M.classification_metrics(test.y, probs_test)
    row["uncalibrated"] = {"log_loss": raw["log_loss"], "ece": raw["ece"], "macro_f1": raw["macro_f1"]}
    row["temperature"] = temperature
    # the macro-F1 decision (astrobio.metrics.fit_macro_f1_weights) fitted on the same validation slice
    weights = M.fit_macro_f1_weights(M.softmax(logits(probs_val), temperature), y_val)
    decided = M.accuracy_macro_f1(test.y, (calibrated * weights).argmax(1))
    row["macro_f1_decision"], row["accuracy_decision"] = decided["macro_f1"], decided["accuracy"]
    row["decision_weights"] = weights.tolist()
    return row


def baseline_rows(method: str, fit, val, test, seed: int, soft=None) -> list[tuple]:
    """(method name, scores, validation probabilities, validation labels, test probabilities) for `method` fitted
    on `fit`, temperature-scaled on `val`, scored on `test` (RunTables). `soft` (`teacher_targets`): LightGBM
    fits the soft targets of `fit`'s runs instead of their labels."""
    from astrobio.evaluation import baselines as B

    if method in ("lightgbm", "lightgbm_reading"):
        models = [(method, B.LightGBMBaseline(seed, with_reading=method == "lightgbm_reading"))]
    elif method == "oracle":
        models = [("oracle", B.OracleBaseline(seed))]
    else:
        models = [(b.name, b) for b in B.classification_baselines(seed) if isinstance(b, B.RuleBaseline)]
    out = []
    for name, model in models:
        t0 = time.process_time()
        if soft is not None and isinstance(model, B.LightGBMBaseline):
            model.fit(fit, soft_targets=soft(fit.run_ids, fit.y))
        else:
            model.fit(fit)
        probs_val, probs_test = model.predict_proba(val), model.predict_proba(test)
        row = calibrated_scores(probs_val, val.y, probs_test, test)
        row["cpu_s"] = time.process_time() - t0
        row["soft_targets"] = soft is not None and isinstance(model, B.LightGBMBaseline)
        out.append((name, row, probs_val, val.y, probs_test))
    return out


def load_tables(store: Path, run_ids: list[str], cache: Path | None):
    """RunTable of `run_ids` (in that order): rows found in `cache` (a pickle `benchmarks/information.py
    --table-cache` wrote from the same store) are taken from it, the rest read from the store."""
    import pickle

    from astrobio.evaluation.features import load_table

    if cache is None or not cache.is_file():
        return load_table(store, run_ids)
    with open(cache, "rb") as f:
        saved = pickle.load(f)
    if saved["store"] != str(store.resolve()):
        raise SystemExit(f"{cache} holds runs of {saved['store']}, not of {store}")
    table = saved["table"]
    position = {rid: i for i, rid in enumerate(table.run_ids)}
    missing = [r for r in run_ids if r not in position]
    if missing:
        print(f"  {len(missing)} runs not in {cache}: read from the store")
        table = concat_tables([table, load_table(store, missing)])
        position = {rid: i for i, rid in enumerate(table.run_ids)}
    return table.subset([position[r] for r in run_ids])


def concat_tables(tables):
    """One RunTable of several, rows in order."""
    from dataclasses import fields

    from astrobio.evaluation.features import RunTable

    cols = {}
    for f in fields(RunTable):
        parts = [getattr(t, f.name) for t in tables]
        cols[f.name] = sum(parts, []) if isinstance(parts[0], list) else np.concatenate(parts)
    return RunTable(**cols)


# ------------------------------------------------------------------------------------------ results file

def leg_environment() -> dict:
    """What ran a leg: the trainer's environment record (git revision, digest of the imported package source,
    python, torch, numpy, platform, threads) and the versions of the other libraries a row depends on. A row that
    does not reproduce can then be traced to code, library or host; legs before 2026-12-07 lack it."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    from astrobio.training.tracking import environment_info

    env = environment_info(torch.device("cpu"))
    for package in ("lightgbm", "scikit-learn", "torch_geometric", "h5py", "tokenizers"):
        try:
            env[package] = version(package)
        except PackageNotFoundError:
            env[package] = None
    return env


def load_results(path: Path, header: dict) -> dict:
    """The results so far, if they belong to this store and test set; else a fresh file with `header`."""
    import json

    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("test_set_sha256") == header["test_set_sha256"] and old.get("store") == header["store"]:
            return old
        print(f"{path}: another store or test set; starting a new results file")
    return {**header, "git_revisions": [], "legs": [], "rows": []}


def save_rows(path: Path, header: dict, leg: dict, rows: list[dict], information: Path) -> dict:
    """Add `rows` to the results file and rewrite it with its summary. Under a lock and re-read first, so legs
    running side by side (e.g. one process per seed) all keep their rows."""
    import fcntl

    from astrobio.io import write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = load_results(path, header)
        result.update({k: v for k, v in header.items() if k != "git_revision"})
        if header["git_revision"] not in result["git_revisions"]:
            result["git_revisions"].append(header["git_revision"])
        if leg not in result["legs"]:
            result["legs"].append(leg)
        have = {(r["method"], r["n_train"], r["seed"]) for r in result["rows"]}
        result["rows"] += [r for r in rows if (r["method"], r["n_train"], r["seed"]) not in have]
        result["summary"] = summarise(result["rows"])
        result["ceiling_estimate"] = ceiling_estimate(result["summary"])
        result["information_ceiling"] = information_ceiling(information, result["test_set_sha256"])
        write_json(path, result)
    return result


def summarise(rows: list[dict]) -> list[dict]:
    """Median (and min, max) over seeds of every score, per (method, n_train)."""
    groups: dict[tuple[str, int], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["n_train"]), []).append(r)
    out = []
    for (method, n), rs in sorted(groups.items()):
        s = {"method": method, "n_train": n, "seeds": len(rs)}
        for k in SCORES:
            v = np.array([r.get(k, np.nan) for r in rs], float)
            v = v[np.isfinite(v)]
            s[k] = {"median": float(np.median(v)), "min": float(v.min()), "max": float(v.max())} if len(v) else None
        out.append(s)
    return out


def ceiling_estimate(summary: list[dict]) -> dict | None:
    """The observer ceiling estimate of issue "World v2": the plateau (best median) of the LightGBM curve."""
    curve = [s for s in summary if s["method"] == "lightgbm" and s["macro_f1"]]
    if not curve:
        return None
    best = max(curve, key=lambda s: s["macro_f1"]["median"])
    last = curve[-1]["macro_f1"]["median"] - curve[-2]["macro_f1"]["median"] if len(curve) > 1 else None
    return {"method": "lightgbm plateau (median over seeds)", "n_train": best["n_train"],
            "macro_f1": best["macro_f1"]["median"], "log_loss": best["log_loss"]["median"],
            "last_step_macro_f1_gain": last}


def information_ceiling(path: Path, test_set_sha256: str) -> dict | None:
    """The plateau of `benchmarks/information.py`'s LightGBM curve (all n runs fitted, uncalibrated), when that
    file scored the same test set."""
    import json

    if not path.is_file():
        return None
    info = json.loads(path.read_text())
    if info.get("learning_curve_test_set_sha256") != test_set_sha256:
        return None
    best = max(info["learning_curve"], key=lambda r: r["observer"]["macro_f1"])
    return {"file": str(path), "n_train": best["train_runs"], "macro_f1": best["observer"]["macro_f1"],
            "oracle_macro_f1": best["oracle"]["macro_f1"]}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    methods = sorted({s["method"] for s in result["summary"]}, key=lambda m: (m.startswith(("kopparapu", "esi",
                                                                                            "bioverse")), m))
    for ax, key, label in ((axes[0], "macro_f1", "macro-F1"), (axes[1], "log_loss", "log-loss")):
        for m in methods:
            pts = [s for s in result["summary"] if s["method"] == m and s[key]]
            if not pts:
                continue
            x = [s["n_train"] for s in pts]
            med = np.array([s[key]["median"] for s in pts])
            err = np.array([[s[key]["median"] - s[key]["min"] for s in pts], [s[key]["max"] - s[key]["median"]
                                                                              for s in pts]])
            rule = m not in ("deep", "lightgbm", "oracle")
            ax.errorbar(x, med, yerr=err, marker="o", capsize=3, label=m, lw=1 if rule else 2,
                        alpha=0.6 if rule else 1.0, ls="--" if rule else "-")
        ceiling = result.get("ceiling_estimate")
        if ceiling:
            ax.axhline(ceiling[key], color="k", ls=":", lw=1.5, label="observer ceiling estimate (LightGBM plateau)")
        info = result.get("information_ceiling")
        if info and key == "macro_f1":
            ax.axhline(info[key], color="grey", ls="-.", lw=1.2,
                       label=f"information.py LightGBM plateau (n={info['n_train']:,}, all runs fitted)")
        ax.set_xscale("log")
        sizes = sorted({s["n_train"] for s in result["summary"]})
        ax.set_xticks(sizes, [f"{n:,}" for n in sizes])
        ax.minorticks_off()
        ax.set_xlabel("training runs")
        ax.set_ylabel(f"{label} on the test set (n={result['test_runs']})")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="best")
    runs = max(leg.get("store_runs", 0) for leg in result["legs"])
    fig.suptitle(f"learning curves on one store (up to {runs:,} runs), median and range over seeds")
    fig.tight_layout()
    from astrobio.io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


# ------------------------------------------------------------------------------------------ main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--sizes", default="1000,4000,16000,32000")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--n-test", type=int, default=3000)
    ap.add_argument("--max-systems", type=int, default=0,
                    help="use only the runs of the store's first N systems (0: all), e.g. while it is still written")
    ap.add_argument("--test-from-systems", type=int, default=0,
                    help="draw the test set from the first N systems only (0: all), so later legs on a grown store "
                         "score the same test set")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--preset", default="small")
    ap.add_argument("--budget-s", default="100,250,600,900", help="deep model CPU seconds per size (one per size)")
    ap.add_argument("--budget-steps", help="deep model: a fixed step budget per size (one per size; replaces "
                    "--budget-s, comparable across machines)")
    # 0.7: `small` at batch 64 on one thread, validation and the first epoch's HDF5 reads included (16k legs of
    # 2026-12-03: 650 steps in 906-983 CPU-s); the batch-16 recipe before it planned 4.6 per CPU-s. Small subsets
    # run faster per step (1k, 2026-12-04: 70 steps in 48-57 CPU-s), so their legs plan at 1.4 to use the budget
    ap.add_argument("--steps-per-cpu-s", type=float, default=0.7,
                    help="optimizer steps per CPU second expected; plans the cosine schedule on the budget")
    # the deep recipe is the preset's (`small`: batch 64, lr 4e-4, validation every 13 steps) with no early
    # stopping: the cosine schedule runs to the budget and the best validation log-loss is kept. The batch-16
    # recipe before it (lr 2e-4, every 50) was chosen on 4,000-run trials of seed 0 by their validation slice:
    # lr 1e-3 / 4e-4 / 2e-4 gave validation macro-F1 0.516 / 0.568 / 0.578; early stopping (patience 4) cut the
    # schedule at high lr
    ap.add_argument("--batch-size", type=int, default=0, help="deep model: batch (0: the preset's)")
    ap.add_argument("--eval-every", type=int, default=0, help="deep model: steps between validations (0: the preset's)")
    ap.add_argument("--patience", type=int, default=0, help="deep model: evaluations without improvement (0: none)")
    ap.add_argument("--lr", type=float, default=0.0, help="deep model: peak learning rate (0: the preset's)")
    ap.add_argument("--select-on", default="log_loss", choices=("log_loss", "macro_f1"),
                    help="deep model: validation score for the best checkpoint and early stopping (TrainConfig)")
    ap.add_argument("--teacher", type=Path, nargs="*", default=(),
                    help="deep model and LightGBM: soft targets distilled from `ceiling.py --teacher-out` files "
                         "(the posterior of the observer told the planet; privileged information, a label "
                         "only): the class loss is the cross-entropy to (1 - w) one-hot + w teacher")
    ap.add_argument("--teacher-weight", type=float, default=1.0, help="w of --teacher (0 .. 1)")
    ap.add_argument("--spectrum-head-weight", type=float, default=0.0,
                    help="deep model: weight of the spectrum head's loss (LossConfig.spectrum_head_weight; the "
                         "hidden PRIVILEGED_KEYS as training targets only); 0, quality.json's recipe, builds none")
    ap.add_argument("--max-val", type=int, default=500,
                    help="cap on the validation slice (10%% of each subset); 500 is quality.json's protocol, and at "
                         "32k a 2,000-run slice picks the deep model's checkpoint better (docs/results.md, 2026-12-07)")
    ap.add_argument("--members", type=int, default=1,
                    help="ensembles: the deep and LightGBM methods fit this many models (member seeds seed + "
                         f"{MEMBER_SEED_STRIDE} k) on each seed's subset and score their mean probabilities, as rows "
                         "'<method>_ensembleK' (1: single models)")
    ap.add_argument("--member", type=int, help="with --members: fit only this member (0 .. K-1) into --work and "
                                               "write no row, so members can be fitted side by side; a later leg "
                                               "without --member reads them and writes the row")
    ap.add_argument("--cache-mb", type=float, default=1536,
                    help="item cache per process (MB); 1536 holds ~11,700 items, so larger subsets re-read HDF5")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/astrobio-quality"))
    ap.add_argument("--out", type=Path, default=Path("docs/measurements/quality.json"))
    ap.add_argument("--table-cache", type=Path, help="baseline tables from `information.py --table-cache FILE`")
    ap.add_argument("--information", type=Path, default=Path("docs/measurements/information.json"),
                    help="its learning-curve plateau is drawn beside ours when it was measured on the same store")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = args.methods.split(",")
    if set(methods) - set(METHODS):
        raise SystemExit(f"--methods: one or more of {METHODS}")
    if args.members < 1:
        raise SystemExit(f"--members: {args.members}, expected 1 or more")
    if args.member is not None and not 0 <= args.member < args.members:
        raise SystemExit(f"--member: {args.member}, expected 0 .. {args.members - 1} (--members {args.members})")
    deep = [m for m in methods if m == "deep" or m in ABLATIONS]
    step_budgets = [int(b) for b in args.budget_steps.split(",")] if args.budget_steps else [0] * len(sizes)
    budgets = [float(b) for b in args.budget_s.split(",")] if deep and not args.budget_steps else [0.0] * len(sizes)
    if len(budgets) != len(sizes) or len(step_budgets) != len(sizes):
        raise SystemExit(f"--budget-s/--budget-steps need one value per size ({len(sizes)})")

    import torch

    from astrobio.data import RealDataStorage
    from astrobio.io import canonical_json, git_revision
    from astrobio.models.presets import train_defaults

    if args.threads:
        torch.set_num_threads(args.threads)

    index = RealDataStorage(args.store).index_columns(("run_id", "system", "content_hash"))
    systems = first_systems(dict(zip(index["run_id"], index["system"])), args.max_systems)
    # the contents of the runs in use, not their ids only: a store re-simulated on another CPU holds the same runs
    # with float values that can differ in the last bits (numpy's SIMD kernels; 2026-12-07 in docs/results.md)
    content = "\n".join(f"{r} {c}" for r, c in zip(index["run_id"], index["content_hash"]) if r in systems)
    test_ids, fractions = choose_test(systems, args.test_from_systems, args.n_test)
    test_ids = sorted(test_ids)
    pool_ids = sorted(set(systems) - set(test_ids))
    print(f"store {args.store}: {len(systems)} runs, pool {len(pool_ids)}, test {len(test_ids)}")
    header = {
        "machine": f"{platform.node()} ({platform.processor() or platform.machine()}, {os.cpu_count()} cores), "
                   "shared with other jobs",
        "git_revision": git_revision(), "store": str(args.store.resolve()), "test_runs": len(test_ids),
        "test_set_sha256": hashlib.sha256("\n".join(test_ids).encode()).hexdigest(),
        "split": {"by": "system", "hash": "astrobio.data.dataset.split_of", "seed": SPLIT_SEED,
                  "fractions": fractions, "test_from_first_systems": args.test_from_systems or None},
        "strata": "astrobio.metrics.transit_stratum (no spectrum, 1-5, 6-20, >20 transits)",
        "val_slice": f"10% of n_train by system, at most {args.max_val} runs",
        "normalisation": "the store's hash train split when the first leg ran (never a test run); every leg uses "
                         "that one data state (saved in --work)",
    }
    recipe = train_defaults(args.preset)  # what a 0 (the preset's) in --batch-size, --eval-every, --lr means
    leg = {"sizes": sizes, "seeds": seeds, "methods": methods, "store_runs": len(systems),
           "first_systems": args.max_systems or None, "pool_runs": len(pool_ids), "deep_preset": args.preset,
           "deep_batch_size": args.batch_size or recipe["batch_size"],
           "deep_eval_every": args.eval_every or recipe["eval_every"], "deep_patience": args.patience,
           "deep_select_on": args.select_on, "deep_lr": args.lr or recipe["lr"],
           "deep_budget_cpu_s": None if args.budget_steps else dict(zip(map(str, sizes), budgets)),
           "deep_steps_per_cpu_s": args.steps_per_cpu_s,
           "deep_budget_steps": dict(zip(map(str, sizes), step_budgets)) if args.budget_steps else None,
           "torch_threads": torch.get_num_threads(), "cache_mb": args.cache_mb,
           "teacher": [str(p) for p in args.teacher], "teacher_weight": args.teacher_weight if args.teacher else None,
           "deep_spectrum_head_weight": args.spectrum_head_weight,
           "environment": leg_environment(),
           "store_content_sha256": hashlib.sha256(content.encode()).hexdigest()}
    result = load_results(args.out, header)
    def family(method: str) -> str:  # the rows' name for `method` under --members
        return f"{method}_ensemble{args.members}" if args.members > 1 and method in ENSEMBLABLE else method

    done = {(r["method_family"], r["n_train"], r["seed"]) for r in result["rows"]}
    todo = [(m, n, b, s) for n, b in zip(sizes, zip(budgets, step_budgets)) for s in seeds for m in methods
            if (family(m), n, s) not in done]
    print(f"{len(todo)} rows to run, {len(done)} already in {args.out}")
    test_table = load_tables(args.store, test_ids, args.table_cache) if todo else None
    pool_table, pool_pos, runs, test_ds = None, None, None, None
    soft = teacher_targets(args.teacher, args.teacher_weight) if args.teacher else None
    if deep:  # before the first row (and whatever is left to do), so every leg with deep methods names its state
        runs, state = all_runs(args.store, args.work, fractions, args.cache_mb)
        test_ds = RunSubset(runs, test_ids)
        leg["data_state_sha256"] = hashlib.sha256(canonical_json(state).encode()).hexdigest()  # of --work's file
    for method, n, budget, seed in todo:
        train_ids, val_ids = subset_ids(pool_ids, systems, n, seed, args.max_val)
        t0 = time.perf_counter()
        if method == "deep" or method in ABLATIONS:
            drop = (method.removeprefix("deep_without_"),) if method in ABLATIONS else ()

            def fit(member_seed, drop=drop, budget=budget):
                return [(method, *train_deep(runs, train_ids, val_ids, test_ds, test_table, args, member_seed, budget,
                                             args.work, drop, soft))]
        else:
            if pool_table is None:
                pool_table = load_tables(args.store, pool_ids, args.table_cache)
                pool_pos = {rid: i for i, rid in enumerate(pool_ids)}
            fit_table = pool_table.subset([pool_pos[r] for r in train_ids])
            val_table = pool_table.subset([pool_pos[r] for r in val_ids])

            def fit(member_seed, fit_table=fit_table, val_table=val_table):
                return baseline_rows(method, fit_table, val_table, test_table, member_seed, soft)
        if family(method) == method:
            rows = [(name, row) for name, row, *_ in fit(seed)]
        else:  # --members models on this seed's subset; member k is seeded seed + MEMBER_SEED_STRIDE * k
            def member(k):
                (_, row, *probs), = fit(seed + MEMBER_SEED_STRIDE * k)
                return {**row, "member_seed": seed + MEMBER_SEED_STRIDE * k}, *probs

            ks = range(args.members) if args.member is None else [args.member]
            members = [cached_member(args.work / "members" / f"{method}-n{n}-seed{seed}-member{k}.npz",
                                     lambda k=k: member(k)) for k in ks]
            if args.member is not None:
                print(f"  {method} n={n} seed={seed}: member {args.member} in {args.work / 'members'}, macro-F1 "
                      f"{members[0][0]['macro_f1']:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
                continue
            rows = [(family(method), ensemble_row(members, test_table))]
        for name, row in rows:
            print(f"  {name:32s} n={n:6d} seed={seed}: macro-F1 {row['macro_f1']:.3f}  log-loss {row['log_loss']:.3f}"
                  f"  ECE {row['ece']:.3f}  ({time.perf_counter() - t0:.0f} s)", flush=True)
        result = save_rows(args.out, header, leg, [{"method": name, "method_family": family(method), "n_train": n,
                                                    "seed": seed, **row} for name, row in rows], args.information)
    result = save_rows(args.out, header, leg, [], args.information)
    if result["rows"]:
        plot(result, args.out.with_suffix(".png"))
        print(f"wrote {args.out} and {args.out.with_suffix('.png')}")

if __name__ == "__main__":
    main()

"""`astrobio evaluate RUN`: the trained model, its ablations and every baseline on one split.

Temperature scaling is fitted on the validation split and applied to the test split (Guo et al. 2017), and so
are the macro-F1 decision weights (`astrobio.metrics.fit_macro_f1_weights`), reported beside argmax.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from astrobio import metrics as M
from astrobio.data.dataset import PlanetRunDataset
from astrobio.evaluation import baselines as B
from astrobio.evaluation.features import load_table
from astrobio.evaluation.inference import load_trained, predict_dataset
from astrobio.evaluation.report import SCORE_COLUMNS, metric_rows
from astrobio.io import atomic_write
from astrobio.world.types import MODALITIES, REGRESSION_KEYS


def _weights_by_class(weights: np.ndarray, pred: np.ndarray) -> dict[str, dict[str, float]]:
    out = {}
    for c, name in enumerate(M.CLASS_NAMES):
        m = pred == c
        if m.any():
            out[name] = {mod: float(weights[m, j].mean()) for j, mod in enumerate(MODALITIES)}
    return out


def evaluate_run(run_dir: str | Path, split: str = "test", data: str | Path | None = None,
                 with_baselines: bool = True, device: str = "cpu") -> dict:
    """Compute every metric, write RUN/metrics.json and return it."""
    run_dir = Path(run_dir)
    loaded = load_trained(run_dir, data, device)
    ds_val = loaded.dataset("val")  # the statistics and tokenizer of the checkpoint, not today's stats.json
    ds = loaded.dataset(split)
    val = predict_dataset(loaded.model, ds_val, device=device)
    temperature = M.fit_temperature(val["logits"], val["labels"]) if len(ds_val) else 1.0
    weights = (M.fit_macro_f1_weights(M.softmax(val["logits"], temperature), val["labels"]) if len(ds_val)
               else np.ones(len(M.CLASS_NAMES)))
    res = predict_dataset(loaded.model, ds, device=device)
    y = res["labels"]
    raw_p, cal_p = M.softmax(res["logits"]), M.softmax(res["logits"], temperature)
    table = load_table(loaded.data_path, ds.run_ids)
    regression_truth = table.regression
    model = {
        "raw": M.classification_metrics(y, raw_p),
        "calibrated": M.classification_metrics(y, cal_p),
        "temperature": temperature,
        # argmax(w * p) with class weights fitted on the validation split for macro-F1 (astrobio.metrics)
        "macro_f1_decision": {"weights": weights.tolist(), **M.accuracy_macro_f1(y, (cal_p * weights).argmax(1))},
        "reliability_before": M.reliability_curve(raw_p, y),
        "reliability_after": M.reliability_curve(cal_p, y),
        "regression": M.regression_metrics(res["regression"], regression_truth, REGRESSION_KEYS),
        "by_transits": M.stratified(y, cal_p, [M.transit_stratum(n) for n in table.n_transits]),
        "by_modality_present": {m: M.stratified(y, cal_p, np.where(res["modality_mask"][:, j], "present", "absent"))
                                for j, m in enumerate(MODALITIES)},
        "modality_weights_mean": {m: float(res["modality_weights"][:, j].mean()) for j, m in enumerate(MODALITIES)},
        "modality_weights_by_class": _weights_by_class(res["modality_weights"], cal_p.argmax(1)),
    }
    ablations = {}
    for m in MODALITIES:
        r = predict_dataset(loaded.model, ds, drop=(m,), device=device)
        ablations[f"without_{m}"] = M.classification_metrics(r["labels"], M.softmax(r["logits"], temperature))
    result = {"split": split, "data": str(loaded.data_path), "model": model, "ablations": ablations}
    if with_baselines:
        result.update(run_baselines(loaded.data_path, ds.run_ids, loaded.seed, test_table=table))
    with atomic_write(run_dir / "metrics.json") as fh:  # temp, fsync, rename: never a torn metrics.json
        fh.write(json.dumps(result, indent=2, default=_json_default))
    return result


def run_baselines(data_path: Path, test_ids: list[str], seed: int, test_table=None) -> dict:
    """Fit every baseline on the train split and score it on `test_ids`."""
    train_ids = PlanetRunDataset(data_path, "train", seed=seed).run_ids
    train = load_table(data_path, train_ids)
    test = test_table if test_table is not None else load_table(data_path, test_ids)
    out = {"baselines": {}}
    for b in B.classification_baselines(seed):
        out["baselines"][b.name] = M.classification_metrics(test.y, b.fit(train).predict_proba(test))
    out["ceiling_estimate"] = B.observer_ceiling(train, test, out["baselines"][B.LightGBMBaseline.name], seed)
    hela = B.HelaRetrieval(seed).fit(train)
    pred = hela.predict(test)
    m = test.has_spectrum
    cols = [REGRESSION_KEYS.index(k) for k in B.HELA_TARGETS]
    out["hela_retrieval"] = M.regression_metrics(pred[m], test.regression[m][:, cols], B.HELA_TARGETS) if m.any() else {}
    return out


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, float) and math.isnan(o):
        return None
    raise TypeError(type(o))


def print_tables(metrics: dict) -> None:
    """The headline table (model vs baselines vs ablations) on the terminal."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"habitability classification, {metrics['split']} split "
                        f"(n={metrics['model']['calibrated']['n']})")
    for col in ("method", *SCORE_COLUMNS.values(), "recall not-hab.", "recall hab.", "recall inhab."):
        table.add_column(col, justify="right" if col != "method" else "left")
    for r in metric_rows(metrics):
        table.add_row(r["name"], *[f"{r[k]:.3f}" for k in SCORE_COLUMNS], *[f"{x:.3f}" for x in r["recalls"]])
    console = Console(width=max(Console().width, 120))  # the method names must not wrap, even in a log
    console.print(table)
    reg = Table(title="regression (model head) and HELA-style retrieval (spectrum only)")
    for col in ("target", "model R²", "model RMSE", "HELA R²", "HELA RMSE"):
        reg.add_column(col)
    hela = metrics.get("hela_retrieval", {})
    for k, v in metrics["model"]["regression"].items():
        h = hela.get(k, {})
        reg.add_row(k, f"{v['r2']:.3f}", f"{v['rmse']:.3g}", f"{h['r2']:.3f}" if h else "-",
                    f"{h['rmse']:.3g}" if h else "-")
    console.print(reg)

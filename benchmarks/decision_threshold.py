"""How much macro-F1 the life question's decision threshold holds: a diagnostic on ensemble members that
`benchmarks/quality.py --members K --member k` kept in its `--work`/members folder.

    python benchmarks/decision_threshold.py --store STORE [--test-from-systems 10000] [--n-test 3000]
        --out FILE MEMBER.npz ...

Inhabited (class 2) and habitable (class 1) are near equal in size and weakly separable (AUROC ≈ 0.6), so the
argmax between them sits on a flat ridge. For each member, after the temperature fitted on its validation slice
(as `quality.py` scores it), this writes the test macro-F1 of argmax(p0, p1, λ·p2):
- λ = 1 (argmax: the member's row);
- λ fitted on the validation slice (one parameter, a log grid over [1/e, e], ties to the λ nearest 1);
- the test curve's maximum over the same grid. That one is chosen with the test labels, so it is hindsight: an
  upper bound on what any single threshold could have given, never a result.
The test set is rebuilt from the store by `quality.py`'s split (give the legs' `--test-from-systems` and
`--n-test`); a member whose argmax macro-F1 is not its own row's was scored on another test set, and stops this.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import re
import statistics
from pathlib import Path

import numpy as np

from astrobio import metrics
from astrobio.io import write_json

LIFE = 2  # the class λ scales: inhabited (CLASS_NAMES order; metrics.QUESTIONS["inhabited"])
MEMBER_NAME = re.compile(r"(?P<method>\w+)-n(?P<n>\d+)-seed(?P<seed>\d+)-member(?P<k>\d+)\.npz")  # quality.py's
LAMBDA_GRID = np.exp(np.linspace(-1.0, 1.0, 81))  # λ in [1/e, e]; the centre (index 40) is exactly 1


def scaled_macro_f1(y, probs: np.ndarray, lam: float) -> float:
    """Macro-F1 of argmax over probs (N, C) with the life class's column scaled by `lam`."""
    scaled = np.array(probs, float, copy=True)
    scaled[:, LIFE] *= lam
    return metrics.accuracy_macro_f1(y, scaled.argmax(1), probs.shape[1])["macro_f1"]


def fit_life_scale(probs_val: np.ndarray, y_val, grid: np.ndarray = LAMBDA_GRID) -> float:
    """The λ of `grid` maximising the validation macro-F1; ties go to the λ nearest 1 (log-distance), so an
    uninformative slice keeps argmax."""
    order = np.argsort(np.abs(np.log(grid)), kind="stable")
    curve = np.array([scaled_macro_f1(y_val, probs_val, grid[i]) for i in order])
    return float(grid[order[int(np.argmax(curve))]])  # np.argmax keeps the first (nearest-1) of equal maxima


def member_record(path: Path, y_test: np.ndarray) -> dict:
    """The three macro-F1s of one member's .npz (probs_val, y_val, probs_test, row), calibrated as quality.py."""
    with np.load(path) as saved:
        probs_val, y_val, probs_test = saved["probs_val"], saved["y_val"], saved["probs_test"]
        row = json.loads(str(saved["row"]))
    if len(probs_test) != len(y_test):
        raise SystemExit(f"{path}: {len(probs_test)} test probabilities, the rebuilt test set has {len(y_test)}")
    logit = lambda p: np.log(np.clip(p, 1e-12, None))  # noqa: E731 — as quality.py: log-probabilities as logits
    temperature = metrics.fit_temperature(logit(probs_val), y_val)
    val, test = metrics.softmax(logit(probs_val), temperature), metrics.softmax(logit(probs_test), temperature)
    lam = fit_life_scale(val, y_val)
    curve = np.array([scaled_macro_f1(y_test, test, g) for g in LAMBDA_GRID])
    argmax_f1 = scaled_macro_f1(y_test, test, 1.0)
    if abs(argmax_f1 - row["macro_f1"]) > 1e-9:
        raise SystemExit(f"{path}: argmax macro-F1 {argmax_f1:.6f} is not its row's {row['macro_f1']:.6f} "
                         "(another test set or store?)")
    name = MEMBER_NAME.fullmatch(path.name)
    if name is None:
        raise SystemExit(f"{path}: not a member file quality.py names METHOD-nN-seedS-memberK.npz")
    return {"member": path.name, "method": name["method"], "n_train": int(name["n"]), "seed": int(name["seed"]),
            "member_seed": row["member_seed"], "n_val": len(y_val),
            "macro_f1_argmax": argmax_f1, "lambda_val": lam, "macro_f1_lambda_val": scaled_macro_f1(y_test, test, lam),
            "macro_f1_decision_row": row["macro_f1_decision"],
            "hindsight_macro_f1_max": float(curve.max()), "hindsight_lambda": float(LAMBDA_GRID[int(curve.argmax())]),
            "share_called_inhabited": float((test.argmax(1) == LIFE).mean()),
            "share_inhabited_true": float((y_test == LIFE).mean()), "auroc_inhabited": row["auroc_inhabited"]}


def summary(records: list[dict]) -> list[dict]:
    """Medians (and the values) per method and training size."""
    keys = ("macro_f1_argmax", "macro_f1_lambda_val", "hindsight_macro_f1_max", "macro_f1_decision_row",
            "share_called_inhabited", "auroc_inhabited")
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["method"], r["n_train"]), []).append(r)
    return [{"method": m, "n_train": n, "members": len(rs),
             **{k: {"median": statistics.median(r[k] for r in rs), "values": [r[k] for r in rs]} for k in keys}}
            for (m, n), rs in sorted(groups.items())]


def load_quality():
    spec = importlib.util.spec_from_file_location("quality_benchmark", Path(__file__).with_name("quality.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--test-from-systems", type=int, default=0)
    ap.add_argument("--n-test", type=int, default=3000)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("members", type=Path, nargs="+", help=".npz files quality.py wrote into --work/members")
    args = ap.parse_args()
    quality = load_quality()
    from astrobio.data import RealDataStorage

    index = RealDataStorage(args.store).index_columns(("run_id", "system"))
    test_ids, _ = quality.choose_test(dict(zip(index["run_id"], index["system"])), args.test_from_systems, args.n_test)
    test_ids = sorted(test_ids)
    y_test = quality.load_tables(args.store, test_ids, None).y
    records = [member_record(p, y_test) for p in args.members]
    for r in records:
        print(f"{r['member']}: argmax {r['macro_f1_argmax']:.4f}, λ on validation {r['lambda_val']:.3f} → "
              f"{r['macro_f1_lambda_val']:.4f}, hindsight max {r['hindsight_macro_f1_max']:.4f}")
    result = {"what": __doc__.split("\n\n")[0], "store": str(args.store),
              "test_set_sha256": hashlib.sha256("\n".join(test_ids).encode()).hexdigest(),
              "environment": quality.leg_environment(), "records": records, "summary": summary(records)}
    write_json(args.out, result, indent=1)


if __name__ == "__main__":
    main()

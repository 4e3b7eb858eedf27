"""Predicting every modellable planet of the shipped catalog, as `astrobio predict RUN --catalog` does.

    .venv/bin/python benchmarks/predict.py [--run RUN] [--mc-samples 20] [--limit 0] [--threads N] [--out FILE.json]

Without --run, a `tiny` model is first trained for a few steps on a small simulated store (setup, not
timed; the model's size, not its quality, sets the cost). Then `predict_catalog` is timed end to end:
reading the catalog, simulating each planet's inputs (demo grid), serving them in memory with the
checkpoint's data state, the model plus `--mc-samples` MC-dropout passes, writing the CSV. The goal
(issue 10 item 7) is <= 60 s for all modellable planets on 2 CPU cores. Wall and CPU seconds are printed
as JSON (CPU is the steadier figure on a shared machine), with the wall time split into simulating the
planets' inputs (world model) and serving + running the model (dataset in memory, MC dropout).
To compare two versions side by side, run it alternately with PYTHONPATH pointing at each one's src/.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def _trained_run(workdir: Path) -> Path:
    from typer.testing import CliRunner

    from astrobio.cli import app
    from astrobio.simulation import simulate_to_store

    store, run = workdir / "store", workdir / "run"
    simulate_to_store(store, 48, seed=2, resolution="demo", workers=1, source="synthetic", progress=False)
    args = ["train", str(store), "--out", str(run), "--preset", "tiny", "--max-steps", "4",
            "--batch-size", "4", "--warmup-steps", "1", "--eval-every", "2", "--tracking", "none", "--seed", "0"]
    result = CliRunner().invoke(app, args)
    if result.exit_code != 0:
        raise SystemExit(f"training the benchmark model failed: {result.output}")
    return run


def _timed(fn, phases: dict[str, float], key: str):
    depth = [0]  # simulate_isolating recurses through this wrapper: count the outermost call only

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        depth[0] += 1
        try:
            return fn(*args, **kwargs)
        finally:
            depth[0] -= 1
            if depth[0] == 0:
                phases[key] += time.perf_counter() - t0

    return wrapper


def _with_dropout(load, p: float):
    def wrapper(*args, **kwargs):
        import torch

        loaded = load(*args, **kwargs)
        for m in loaded.model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = p
        return loaded

    return wrapper


def main() -> None:
    import torch

    from astrobio.evaluation import predict as P

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=None, help="a trained run directory (default: train a tiny one)")
    ap.add_argument("--mc-samples", type=int, default=P.MC_SAMPLES)
    ap.add_argument("--limit", type=int, default=0, help="only the first N modellable planets (0 = all)")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")
    ap.add_argument("--dropout", type=float, default=0.0,
                    help="set every nn.Dropout of the loaded model to this p, so that the MC passes run as for a "
                         "preset with dropout (`tiny` has none, and its passes are skipped)")
    ap.add_argument("--out", type=Path, default=None, help="also write the result JSON here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="astrobio-bench-predict-") as tmp:
        run = args.run or _trained_run(Path(tmp))
        if args.dropout:
            P.load_trained = _with_dropout(P.load_trained, args.dropout)  # predict_catalog looks it up here
        phases = {"simulate_s": 0.0, "model_s": 0.0}
        for name, key in (("simulate_isolating", "simulate_s"), ("predict_runs", "model_s")):
            setattr(P, name, _timed(getattr(P, name), phases, key))  # predict_catalog looks them up here
        t0, c0 = time.perf_counter(), time.process_time()
        rows, skipped = P.predict_catalog(run, Path(tmp) / "predictions.csv", progress=False, limit=args.limit,
                                          mc_samples=args.mc_samples)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    failed = [s for s in skipped if s[1].startswith("simulation failed")]
    result = {"planets_predicted": len(rows), "planets_skipped_by_the_reader": len(skipped) - len(failed),
              "planets_whose_simulation_failed": len(failed), "mc_samples": args.mc_samples, "dropout": args.dropout,
              "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "planets_per_s": round(len(rows) / wall, 2),
              **{k: round(v, 2) for k, v in phases.items()},
              "first_simulation_failures": failed[:3],
              "torch_threads": torch.get_num_threads(), "goal_wall_s": 60.0, "run": str(args.run or "tiny, 4 steps"),
              "code": str(Path(P.__file__).parents[2]), "load_average_1min_at_end": round(os.getloadavg()[0], 1)}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

"""End-to-end `small` training on 2 CPU cores: this tree's demo training command beside an older checkout's.

Each round runs three trainings (in a rotating order) as fresh processes on the same store, over the same number
of training samples (`--samples`), each version at its own recipe, no early stopping:
- old: the command, threading and recipe 7da8773's demo used (`--data STORE --workers 1`, one thread; its `small`
  preset at batch 16, validation every 50 steps);
- new: the demo's command now (`--loader-workers 1`, `DEMO_TRAIN_THREADS` threads, one process), at the preset's
  own batch and validation interval (`small`: batch 64, validation every 13 steps, ~830 samples as before);
- ddp2: the alternative of two data-parallel ranks under `torch.distributed.run` (gloo), one thread each,
  each rank half the preset's batch, `--loader-workers 0` (measured on 2026-12-03 at batch 16 and not adopted:
  ≈ the single process).
The figures are the trainer's own `train_summary.json` samples/s (training steps including the wait for
batches, all ranks counted; validation excluded) and the process wall time (start-up, rendezvous and
validation included). The table gives medians over `--rounds`, and the ratios paired within each round.

    git worktree add /tmp/old 7da8773
    astrobio simulate --out /tmp/store --n 2500 --seed 0 --sim-workers 2
    .venv/bin/python benchmarks/train_compare.py --old /tmp/old --data /tmp/store --samples 6400 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from astrobio.demo import train_environment
from astrobio.models.presets import train_defaults

OLD_BATCH, OLD_EVAL_EVERY = 16, 50  # 7da8773's demo: `--batch-size 16 --eval-every 50`
LABELS = ("old", "new", "ddp2")


def command(label: str, store: str, out: str, samples: int, seed: int) -> tuple[list[str], dict[str, str]]:
    """The train command line and environment of `label` (one of LABELS), for `samples` training samples."""
    new = train_defaults("small")
    batch, every = (OLD_BATCH, OLD_EVAL_EVERY) if label == "old" else (new["batch_size"], new["eval_every"])
    common = ["--preset", "small", "--out", out, "--max-steps", str(max(1, samples // batch)),
              "--eval-every", str(every), "--seed", str(seed), "--patience", "0"]
    if label == "ddp2":
        return ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                 "-m", "astrobio.cli", "train", store, *common, "--batch-size", str(batch // 2),
                 "--loader-workers", "0"], train_environment({}, 1))
    common += ["--batch-size", str(batch)]
    if label == "old":
        return ([sys.executable, "-m", "astrobio.cli", "train", "--data", store, *common, "--workers", "1"],
                train_environment({}, 1))
    return ([sys.executable, "-m", "astrobio.cli", "train", store, *common, "--loader-workers", "1"],
            train_environment({}))


def one_run(label: str, src: str | None, args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run")
        cmd, extra = command(label, args.data, out, args.samples, args.seed)
        env = {**os.environ, **extra}
        if src:
            env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        summary = json.loads(Path(out, "train_summary.json").read_text())
    return {"code": label, "steps": summary["steps"], "samples_seen": summary["samples_seen"],
            "samples_per_s": summary["samples_per_s"],
            "train_time_s": summary["train_time_s"], "process_wall_s": wall, "load_before": load,
            "omp_threads": extra["OMP_NUM_THREADS"], "world_size": summary["world_size"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--old", required=True, help="an older checkout (its src/ is put first on PYTHONPATH)")
    p.add_argument("--data", required=True, help="a simulated store both versions read")
    p.add_argument("--samples", type=int, default=6400, help="training samples per run (steps × batch)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the rows and medians as JSON here")
    args = p.parse_args()

    rows = []
    for r in range(args.rounds):
        order = [(label, os.path.join(args.old, "src") if label == "old" else None) for label in LABELS]
        for label, src in order[r % len(order):] + order[:r % len(order)]:
            rows.append({"round": r, **one_run(label, src, args)})
            x = rows[-1]
            print(f"round {r} {label}: {x['samples_per_s']:.1f} samples/s in training steps, "
                  f"{x['process_wall_s']:.0f} s process wall ({x['steps']} steps, load {x['load_before']:.1f})",
                  flush=True)
    med = {lab: {k: statistics.median(x[k] for x in rows if x["code"] == lab)
                 for k in ("samples_per_s", "process_wall_s")} for lab in LABELS}
    speedup = {lab: med[lab]["samples_per_s"] / med["old"]["samples_per_s"] for lab in LABELS}
    # the host's speed drifts between legs: the ratio within each round is the figure to trust
    by_round = {(x["round"], x["code"]): x["samples_per_s"] for x in rows}
    paired = {f"{a}/{b}": statistics.median(by_round[r, a] / by_round[r, b] for r in range(args.rounds))
              for a, b in (("new", "old"), ("ddp2", "old"), ("ddp2", "new"))}
    wall_ratio = {lab: med["old"]["process_wall_s"] / med[lab]["process_wall_s"] for lab in LABELS}
    print(f"small, {args.samples} training samples per run, {os.cpu_count()} CPUs, medians over {args.rounds} rounds:")
    for lab in LABELS:
        print(f"  {lab:6s} {med[lab]['samples_per_s']:6.1f} samples/s (x{speedup[lab]:.2f}), "
              f"process wall {med[lab]['process_wall_s']:.0f} s (x{wall_ratio[lab]:.2f})")
    print("  median of the ratios within each round: " + ", ".join(f"{k} x{v:.2f}" for k, v in paired.items()))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"rows": rows, "medians": med, "speedup_samples_per_s": speedup,
                       "speedup_process_wall": wall_ratio,
                       "paired_speedup_samples_per_s": paired, "samples": args.samples, "old": args.old,
                       "data": args.data}, f, indent=1)


if __name__ == "__main__":
    main()

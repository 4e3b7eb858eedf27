"""Training throughput of the unified multi-modal system.

CPU (default):  samples/s of the real trainer for a preset, and loader time vs compute time per batch
                (the loader must not be the bottleneck).
    .venv/bin/python benchmarks/train.py --preset tiny
GPU (--gpu):    samples/s, model FLOP utilisation (FLOPs of one training step from
                torch.utils.flop_counter.FlopCounterMode ÷ step time ÷ peak) and peak memory, bf16.
    python benchmarks/train.py --gpu --preset base --peak-tflops 989

Self-contained: without --data it simulates a small store into a temporary directory first.
Prints one JSON object (and writes it to --out when given).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

H200_BF16_DENSE_TFLOPS = 989.0  # NVIDIA H200 SXM datasheet: 1,979 TFLOP/s bf16 with sparsity, half dense


def simulate_store(path: Path, runs: int, resolution: str, seed: int) -> Path:
    from astrobio.simulation import simulate_to_store

    workers = max(1, min(16, os.cpu_count() or 1))
    simulate_to_store(path, n=runs, seed=seed, resolution=resolution, workers=workers, source="synthetic",
                      chunk=max(1, -(-runs // workers)), progress=False)  # one chunk per worker
    return path


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def loader_seconds_per_batch(loader, n_batches: int) -> float:
    """Wall time to fetch and collate one batch (first batch excluded: worker start-up)."""
    it = iter(loader)
    next(it)
    t0, n = time.perf_counter(), 0
    for _ in range(n_batches):
        try:
            next(it)
        except StopIteration:
            it = iter(loader)
            next(it)
        n += 1
    return (time.perf_counter() - t0) / n


def compute_step_seconds(trainer, batch, n_steps: int) -> tuple[float, float]:
    """(median seconds, FLOPs) of one forward + backward + optimizer step on a device-resident batch."""
    from torch.utils.flop_counter import FlopCounterMode

    model, device = trainer.raw_model, trainer.ctx.device
    model.train()

    def step() -> None:
        with trainer._autocast():
            loss = trainer.loss_fn(model(batch), batch)["total"]
        loss.backward()
        trainer.optimizer.step()
        trainer.optimizer.zero_grad(set_to_none=True)

    for _ in range(2):  # warm-up: allocator, cuDNN autotuning, lazy inits
        step()
    sync(device)
    times = []
    for _ in range(n_steps):
        t0 = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - t0)
    with FlopCounterMode(display=False) as counter:
        with trainer._autocast():
            loss = trainer.loss_fn(model(batch), batch)["total"]
        loss.backward()
    trainer.optimizer.zero_grad(set_to_none=True)
    return statistics.median(times), float(counter.get_total_flops())


def run(args: argparse.Namespace) -> dict:
    from astrobio.data import make_dataloader
    from astrobio.training import TrainConfig, Trainer
    from astrobio.training.setup import build_system_run
    from astrobio.training.distributed import DistContext

    device = torch.device("cuda" if args.gpu else "cpu")
    if args.gpu and not torch.cuda.is_available():
        raise SystemExit("--gpu given but CUDA is not available")
    torch.set_num_threads(args.threads or torch.get_num_threads())
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        data = Path(args.data) if args.data else simulate_store(Path(tmp) / "store", args.runs, args.resolution, 0)
        simulate_s = time.perf_counter() - t0 if not args.data else 0.0
        precision = args.precision or ("bf16" if args.gpu else "fp32")
        cfg = TrainConfig(preset=args.preset, lr=1e-3, warmup_steps=1, max_steps=args.steps, batch_size=args.batch_size,
                          eval_every=args.steps, log_every=1, precision=precision, loader_workers=args.workers,
                          tracking="none", activation_checkpointing=args.activation_checkpointing, seed=0)
        ctx = DistContext(device=device)
        built = build_system_run(cfg, data, ctx)
        n_params = sum(p.numel() for p in built["model"].parameters())
        trainer = Trainer(built["model"], built["loss_fn"], built["train"], None, cfg, Path(tmp) / "run", ctx=ctx,
                          data_fingerprint=built["fingerprint"])

        loader = make_dataloader(built["train"], batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                                 seed=0)
        loader_s = loader_seconds_per_batch(loader, args.loader_batches)
        batch = next(iter(loader)).to(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        step_s, flops = compute_step_seconds(trainer, batch, args.compute_steps)
        peak_mem_gb = torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None

        # end to end through the real trainer (loader in the loop); steady state = steps after the first 2
        summary = trainer.fit()
        rows = [json.loads(r) for r in (Path(tmp) / "run" / "history.jsonl").read_text().splitlines()]
        per_step = [r["samples_per_s"] for r in rows if r["kind"] == "train" and r["step"] > 2]
        result = {
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu x{os.cpu_count()}",
            "torch_threads": torch.get_num_threads(), "preset": args.preset, "parameters": n_params,
            "precision": precision, "batch_size": args.batch_size, "workers": args.workers,
            "activation_checkpointing": args.activation_checkpointing,
            "store_runs_train": len(built["train"]), "resolution": args.resolution, "simulate_s": round(simulate_s, 1),
            "loader_s_per_batch": loader_s, "compute_s_per_batch": step_s,
            "loader_to_compute_ratio": loader_s / step_s,
            "compute_samples_per_s": args.batch_size / step_s,
            "trainer_samples_per_s_median": statistics.median(per_step) if per_step else summary["samples_per_s"],
            "trainer_steps": summary["steps"],
            "flops_per_step": flops,
            "achieved_tflops": flops / step_s / 1e12,
        }
        if device.type == "cuda":
            result.update(peak_tflops=args.peak_tflops, mfu=flops / step_s / (args.peak_tflops * 1e12),
                          peak_memory_gb=peak_mem_gb)
        return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default=None, help="tiny | small | base | xl (default: tiny on CPU, base with --gpu)")
    p.add_argument("--data", default=None, help="store directory; default: simulate --runs runs into a temp dir")
    p.add_argument("--runs", type=int, default=48, help="runs to simulate when --data is not given")
    p.add_argument("--resolution", default=None,
                   help="climate grid of the simulated store: demo | seed (default: seed for base/xl, else demo)")
    p.add_argument("--batch-size", type=int, default=None, help="default 8 on CPU, 16 with --gpu")
    p.add_argument("--workers", type=int, default=None, help="loader workers (default 0 on CPU, 4 with --gpu)")
    p.add_argument("--steps", type=int, default=8, help="trainer steps for the end-to-end samples/s")
    p.add_argument("--compute-steps", type=int, default=5, help="timed compute-only steps")
    p.add_argument("--loader-batches", type=int, default=8)
    p.add_argument("--precision", default=None, help="default fp32 on CPU, bf16 with --gpu")
    p.add_argument("--activation-checkpointing", action="store_true")
    p.add_argument("--gpu", action="store_true", help="CUDA mode: MFU and peak memory")
    p.add_argument("--peak-tflops", type=float, default=H200_BF16_DENSE_TFLOPS,
                   help="device peak for MFU (default H200 bf16 dense)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--out", default=None, help="also write the JSON here")
    args = p.parse_args()
    args.preset = args.preset or ("base" if args.gpu else "tiny")
    args.resolution = args.resolution or ("seed" if args.preset in ("base", "xl") else "demo")
    args.batch_size = args.batch_size or (16 if args.gpu else 8)
    args.workers = args.workers if args.workers is not None else (4 if args.gpu else 0)
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()

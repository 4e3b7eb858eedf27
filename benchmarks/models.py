"""Model throughput: forward+backward samples/s of each encoder and of the whole system (with its loss).

Inputs are random tensors of the real sizes (not simulated planets, so the benchmark isolates the models):
datacube on the demo grid 8×16×5 (or --grid seed: 32×64×10), one metabolic-sized graph per sample with
`--graph-nodes` nodes (uniform in the range) and 2.5 edges per node, a 1000-bin spectrum, `--text-tokens`
tokens of text. Graphs are drawn from `--graph-pool` distinct ones, as the simulated planets share one
metabolic network per environment (0: every graph different). Each row: mean over `--steps` timed steps
after `--warmup` untimed ones.

`--compare-old DIR` measures the `small` training step (forward + backward + AdamW) of this tree and of an
older checkout's `src/` side by side: each round runs both, in alternating order, as fresh processes on the
same batches (synthetic, or `--data STORE`'s train batches); the table gives the median over `--rounds`
rounds of CPU-s per step, and the speed-up in samples per CPU-s (`--batch-size-old` runs the old checkout at
its own recipe's batch, e.g. 16 for 7da8773's `small`, against the new one's 64).

    .venv/bin/python benchmarks/models.py                         # tiny and small, batch 16
    .venv/bin/python benchmarks/models.py --presets small --steps 10 --out bench.json
    git worktree add /tmp/old e7d467d && .venv/bin/python benchmarks/models.py --compare-old /tmp/old --threads 1
    .venv/bin/python benchmarks/models.py --compare-old /tmp/old --threads 1 --data STORE [--data-old OLD_STORE]
    .venv/bin/python benchmarks/models.py --compare-old /tmp/old --threads 2 --data STORE --batch-size 64 --batch-size-old 16
"""

from __future__ import annotations

import argparse
import json
import os
import time

GRIDS = {"demo": (8, 16, 5), "seed": (32, 64, 10)}


def synthetic_batch(B: int, grid: str, graph_nodes: tuple, text_tokens: int, vocab: int, seed: int,
                    graph_pool: int = 0):
    """A `MultiModalBatch` of random tensors with the real shapes (all modalities present); with `graph_pool`
    > 0 the graphs are drawn from that many distinct ones."""
    import dataclasses

    import torch
    from torch_geometric.data import Batch, Data

    from astrobio.data.batch import MODALITIES, MultiModalBatch
    from astrobio.world import types

    g = torch.Generator().manual_seed(seed)
    lat, lon, lev = GRIDS[grid]
    cube = torch.randn(B, 2, 12, lat, lon, lev, generator=g)
    def random_graph():
        n = int(torch.randint(graph_nodes[0], graph_nodes[1] + 1, (1,), generator=g))
        return Data(x=torch.rand(n, 64, generator=g), edge_index=torch.randint(0, n, (2, int(2.5 * n)), generator=g))

    pool = [random_graph() for _ in range(graph_pool)]
    graphs = [pool[int(torch.randint(0, graph_pool, (1,), generator=g))] if pool else random_graph() for _ in range(B)]
    wl = torch.linspace(0.6, 12.0, 1000).expand(B, 1000)
    spectrum = torch.stack([wl, 5000 + 30 * torch.randn(B, 1000, generator=g), torch.full((B, 1000), 30.0)], -1)
    F, R = len(types.OBSERVED_NUMERIC_FIELDS), len(types.REGRESSION_KEYS)
    # a realistic cube in raw units is not needed here: stats map N(0, 1) to Earth-like T and q
    stats = {"mean": torch.tensor([260.0, 3e-3]), "std": torch.tensor([25.0, 3e-3])}
    fields = dict(
        run_ids=[f"bench-{i}" for i in range(B)], datacube=cube, datacube_target=cube + 0.1, datacube_stats=stats,
        sigma_levels=torch.linspace(1.0, 0.1, lev), lat_deg=torch.linspace(-80, 80, lat),
        graph=Batch.from_data_list(graphs), spectrum=spectrum,
        input_ids=torch.randint(4, vocab, (B, text_tokens), generator=g),
        attention_mask=torch.ones(B, text_tokens, dtype=torch.int64),
        numerical_data=torch.randn(B, F, generator=g), numerical_mask=torch.ones(B, F, dtype=torch.bool),
        physics_features=torch.randn(B, 4, generator=g),
        spectrum_reading=torch.randn(B, len(getattr(types, "SPECTRUM_READING_FIELDS", ())), generator=g),
        spectrum_reading_mask=torch.ones(B, len(getattr(types, "SPECTRUM_READING_FIELDS", ())), dtype=torch.bool),
        instellation_wm2=torch.full((B,), 1361.0),
        surface_pressure_bar=torch.ones(B), labels=torch.randint(0, 3, (B,), generator=g),
        regression_targets=torch.randn(B, R, generator=g),
        regression_stats={"mean": torch.zeros(R), "std": torch.ones(R)},
        modality_mask=torch.ones(B, len(MODALITIES), dtype=torch.bool))
    known = {f.name for f in dataclasses.fields(MultiModalBatch)}  # an older checkout (--compare-old) lacks newer fields
    return MultiModalBatch(**{k: v for k, v in fields.items() if k in known})


def time_step(fn, warmup: int, steps: int) -> tuple[float, float]:
    """Mean wall and CPU seconds (all threads of this process) of fn() over `steps` after `warmup` calls.

    On a shared machine the CPU time is the better estimate of what the step costs: with one thread it is
    close to the wall time the step would take on an idle core."""
    for _ in range(warmup):
        fn()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t0) / steps, (time.process_time() - c0) / steps


def bench_preset(preset: str, args) -> list[dict]:
    import dataclasses

    import torch

    from astrobio.models.losses import compute_multimodal_loss
    from astrobio.models.system import SystemConfig, UnifiedMultiModalSystem

    cfg = SystemConfig.from_name(preset)
    if args.grid == "seed":
        cfg = dataclasses.replace(cfg, datacube=dataclasses.replace(cfg.datacube, n_levels=10, patch_size=(3, 4, 4)))
    torch.manual_seed(args.seed)
    m = UnifiedMultiModalSystem(cfg).train()
    b = synthetic_batch(args.batch_size, args.grid, tuple(args.graph_nodes), args.text_tokens,
                        cfg.language.vocab_size, args.seed, args.graph_pool)
    sp = lambda: m.spectrum(b.spectrum)["features"]  # noqa: E731
    parts = {
        "datacube": (m.datacube, lambda: m.datacube(b.datacube)["reconstruction"].square().mean()),
        "graph": (m.graph, lambda: m.graph(b.graph)["graph_embedding"].square().mean()),
        "spectrum": (m.spectrum, lambda: sp().square().mean()),
        "language": (m.language, lambda: m.language(b.input_ids, b.attention_mask, labels=b.input_ids,
                                                    numerical_data=b.numerical_data,
                                                    spectral_data=sp().detach())["loss"]),
        "system+loss": (m, lambda: compute_multimodal_loss(m(b), b, cfg.loss)["total"]),
    }
    rows = []
    for name, (module, loss_fn) in parts.items():
        def step():
            m.zero_grad(set_to_none=True)
            loss_fn().backward()
        sec, cpu = time_step(step, args.warmup, args.steps)
        rows.append({"preset": preset, "component": name, "params_M": sum(p.numel() for p in module.parameters()) / 1e6,
                     "batch": args.batch_size, "step_s": sec, "samples_per_s": args.batch_size / sec,
                     "cpu_s": cpu, "samples_per_cpu_s": args.batch_size / cpu})
    return rows


def train_step_cost(args) -> dict:
    """CPU-s and wall-s per `small` training step (forward, loss, backward, the trainer's AdamW) of whichever
    `astrobio` this process imports, on `--batches` batches cycled (synthetic, or the first shuffled train
    batches of the store `--data`: real text lengths and missing modalities); the median over timed steps."""
    import statistics

    import torch

    from astrobio.models.losses import compute_multimodal_loss
    from astrobio.models.system import SystemConfig, UnifiedMultiModalSystem
    from astrobio.training.config import TrainConfig
    from astrobio.training.trainer import build_optimizer

    cfg = SystemConfig.from_name("small")
    torch.manual_seed(args.seed)
    m = UnifiedMultiModalSystem(cfg).train()
    opt = build_optimizer(m, TrainConfig(lr=1e-3), torch.device("cpu"))  # the trainer's optimizer, as it builds it
    if args.data:
        import itertools

        from astrobio.data import PlanetRunDataset, make_dataloader

        loader = make_dataloader(PlanetRunDataset(args.data, "train"), batch_size=args.batch_size, shuffle=True,
                                 seed=args.seed)
        batches = list(itertools.islice(loader, args.batches))
    else:
        batches = [synthetic_batch(args.batch_size, args.grid, tuple(args.graph_nodes), args.text_tokens,
                                   cfg.language.vocab_size, args.seed + i, args.graph_pool)
                   for i in range(args.batches)]

    def step(b):
        compute_multimodal_loss(m(b), b, cfg.loss)["total"].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for i in range(args.warmup):
        step(batches[i % len(batches)])
    cpu, wall = [], []
    for i in range(args.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        step(batches[i % len(batches)])
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    import astrobio

    return {"source": os.path.dirname(astrobio.__file__), "cpu_s": statistics.median(cpu),
            "wall_s": statistics.median(wall), "batch": args.batch_size}


def compare_old(args) -> list[dict]:
    """Rounds of (old, new) or (new, old) fresh processes; returns every measurement."""
    import subprocess
    import sys

    rows = []
    stores = {"old": args.data_old or args.data, "new": args.data}
    batch = {"old": args.batch_size_old or args.batch_size, "new": args.batch_size}
    for r in range(args.rounds):
        order = [("old", os.path.join(args.compare_old, "src")), ("new", None)]
        for label, src in (order if r % 2 == 0 else order[::-1]):
            env = dict(os.environ)
            if src:
                env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
            cmd = [sys.executable, __file__, "--worker", "--steps", str(args.steps), "--warmup", str(args.warmup),
                   "--batch-size", str(batch[label]), "--graph-pool", str(args.graph_pool),
                   "--graph-nodes", *map(str, args.graph_nodes), "--text-tokens", str(args.text_tokens),
                   "--threads", str(args.threads), "--seed", str(args.seed), "--batches", str(args.batches)]
            if stores[label]:
                cmd += ["--data", stores[label]]
            out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
            rows.append({"round": r, "code": label, **json.loads(out.strip().splitlines()[-1])})
            print(f"round {r} {label}: {rows[-1]['cpu_s']:.3f} CPU-s/step ({rows[-1]['source']})", flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="+", default=["tiny", "small"])
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--grid", choices=sorted(GRIDS), default="demo")
    p.add_argument("--graph-nodes", type=int, nargs=2, default=[100, 400])
    p.add_argument("--text-tokens", type=int, default=128)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--graph-pool", type=int, default=4,
                   help="distinct graphs the batch draws from (one per environment); 0 = all different")
    p.add_argument("--compare-old", metavar="DIR", help="an older checkout: measure its small step beside this one")
    p.add_argument("--rounds", type=int, default=5, help="--compare-old: rounds of (old, new)")
    p.add_argument("--batches", type=int, default=4, help="--compare-old: distinct batches cycled")
    p.add_argument("--batch-size-old", type=int, help="--compare-old: the old checkout's batch (default --batch-size)")
    p.add_argument("--data", help="--compare-old: a simulated store whose train batches replace the synthetic ones")
    p.add_argument("--data-old", help="--compare-old: the same runs in a store the old checkout reads "
                                      "(default --data; an older checkout may refuse a newer store format)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", help="write the rows as JSON here")
    args = p.parse_args()

    import statistics

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        print(json.dumps(train_step_cost(args)))
        return
    if args.compare_old:
        rows = compare_old(args)
        old = statistics.median(r["cpu_s"] for r in rows if r["code"] == "old")
        new = statistics.median(r["cpu_s"] for r in rows if r["code"] == "new")
        b_old, b_new = args.batch_size_old or args.batch_size, args.batch_size
        speedup = (b_new / new) / (b_old / old)  # samples per CPU-s, new over old
        batches = f"store {args.data}" if args.data else f"synthetic, graph pool {args.graph_pool}"
        print(f"small training step, batch {b_old} (old) / {b_new} (new), {args.threads or torch.get_num_threads()} "
              f"threads, {batches}, load average {os.getloadavg()[0]:.1f}: median over {args.rounds} rounds")
        print(f"old {old:.3f} CPU-s/step = {b_old / old:.1f} samples/CPU-s; "
              f"new {new:.3f} CPU-s/step = {b_new / new:.1f} samples/CPU-s; speed-up {speedup:.2f}x")
        if args.out:
            with open(args.out, "w") as f:
                json.dump({"rows": rows, "old_cpu_s": old, "new_cpu_s": new, "batch_old": b_old, "batch_new": b_new,
                           "speedup_samples_per_cpu_s": speedup}, f, indent=1)
        return
    rows = [r for preset in args.presets for r in bench_preset(preset, args)]
    print(f"forward+backward, fp32, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, grid {args.grid}, "
          f"graphs {args.graph_nodes[0]}-{args.graph_nodes[1]} nodes, text {args.text_tokens} tokens")
    print(f"load average {os.getloadavg()[0]:.1f} (CPU time excludes waiting for a shared core)")
    print(f"{'preset':<7}{'component':<13}{'params (M)':>11}{'batch':>7}{'s/step':>9}{'samples/s':>11}"
          f"{'CPU-s/step':>12}{'samples/CPU-s':>15}")
    for r in rows:
        print(f"{r['preset']:<7}{r['component']:<13}{r['params_M']:>11.2f}{r['batch']:>7}{r['step_s']:>9.3f}"
              f"{r['samples_per_s']:>11.1f}{r['cpu_s']:>12.3f}{r['samples_per_cpu_s']:>15.1f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()

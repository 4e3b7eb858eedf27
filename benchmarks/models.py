"""Model throughput: forward+backward samples/s of each encoder and of the whole system (with its loss).

Inputs are random tensors of the real sizes (not simulated planets, so the benchmark isolates the models):
datacube on the demo grid 8×16×5 (or --grid seed: 32×64×10), one metabolic-sized graph per sample with
`--graph-nodes` nodes (uniform in the range) and 2.5 edges per node, a 1000-bin spectrum, `--text-tokens`
tokens of text. Each row: mean over `--steps` timed steps after `--warmup` untimed ones.

    .venv/bin/python benchmarks/models.py                         # tiny and small, batch 16
    .venv/bin/python benchmarks/models.py --presets small --steps 10 --out bench.json
"""

from __future__ import annotations

import argparse
import json
import time

GRIDS = {"demo": (8, 16, 5), "seed": (32, 64, 10)}


def synthetic_batch(B: int, grid: str, graph_nodes: tuple, text_tokens: int, vocab: int, seed: int):
    """A `MultiModalBatch` of random tensors with the real shapes (all modalities present)."""
    import torch
    from torch_geometric.data import Batch, Data

    from astrobio.data.batch import MODALITIES, MultiModalBatch
    from astrobio.world.types import OBSERVED_NUMERIC_FIELDS, REGRESSION_KEYS

    g = torch.Generator().manual_seed(seed)
    lat, lon, lev = GRIDS[grid]
    cube = torch.randn(B, 2, 12, lat, lon, lev, generator=g)
    graphs = []
    for _ in range(B):
        n = int(torch.randint(graph_nodes[0], graph_nodes[1] + 1, (1,), generator=g))
        graphs.append(Data(x=torch.rand(n, 64, generator=g), edge_index=torch.randint(0, n, (2, int(2.5 * n)),
                                                                                     generator=g)))
    wl = torch.linspace(0.6, 12.0, 1000).expand(B, 1000)
    spectrum = torch.stack([wl, 5000 + 30 * torch.randn(B, 1000, generator=g), torch.full((B, 1000), 30.0)], -1)
    F, R = len(OBSERVED_NUMERIC_FIELDS), len(REGRESSION_KEYS)
    # a realistic cube in raw units is not needed here: stats map N(0, 1) to Earth-like T and q
    stats = {"mean": torch.tensor([260.0, 3e-3]), "std": torch.tensor([25.0, 3e-3])}
    return MultiModalBatch(
        run_ids=[f"bench-{i}" for i in range(B)], datacube=cube, datacube_target=cube + 0.1, datacube_stats=stats,
        sigma_levels=torch.linspace(1.0, 0.1, lev), lat_deg=torch.linspace(-80, 80, lat),
        graph=Batch.from_data_list(graphs), spectrum=spectrum,
        input_ids=torch.randint(4, vocab, (B, text_tokens), generator=g),
        attention_mask=torch.ones(B, text_tokens, dtype=torch.int64),
        numerical_data=torch.randn(B, F, generator=g), numerical_mask=torch.ones(B, F, dtype=torch.bool),
        physics_features=torch.randn(B, 4, generator=g), instellation_wm2=torch.full((B,), 1361.0),
        surface_pressure_bar=torch.ones(B), labels=torch.randint(0, 3, (B,), generator=g),
        regression_targets=torch.randn(B, R, generator=g),
        regression_stats={"mean": torch.zeros(R), "std": torch.ones(R)},
        modality_mask=torch.ones(B, len(MODALITIES), dtype=torch.bool))


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
    from astrobio.models.presets import SystemConfig
    from astrobio.models.system import UnifiedMultiModalSystem

    cfg = SystemConfig.from_name(preset)
    if args.grid == "seed":
        cfg = dataclasses.replace(cfg, datacube=dataclasses.replace(cfg.datacube, n_levels=10, patch_size=(3, 4, 4)))
    torch.manual_seed(args.seed)
    m = UnifiedMultiModalSystem(cfg).train()
    b = synthetic_batch(args.batch_size, args.grid, tuple(args.graph_nodes), args.text_tokens,
                        cfg.language.vocab_size, args.seed)
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
    p.add_argument("--out", help="write the rows as JSON here")
    args = p.parse_args()

    import os

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
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

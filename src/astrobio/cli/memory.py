"""`astrobio memory`: parameter counts and the training-memory plan of a preset."""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from astrobio.training.config import TrainConfig


def memory(
    preset: str = typer.Option("xl", "--preset", help="tiny | small | base | xl"),
    gpu_memory_gb: float = typer.Option(..., "--gpu-memory-gb",
                                        help="memory of one GPU, GiB (e.g. 24 for an RTX A5000)"),
    micro_batch_size: Optional[int] = typer.Option(None, "--micro-batch-size",
                                                   help="samples per GPU per step (default: the preset's "
                                                        "training micro-batch)"),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", help="text tokens per sample (default: what training "
                                                                  "feeds, PlanetRunDataset's max_text_tokens)"),
    component: str = typer.Option("system", "--component", help="system (all parts) or language (the LM alone)"),
    num_gpus: int = typer.Option(1, "--num-gpus", help="GPUs sharing weights/grads/optimizer (FSDP full shard, "
                                                       "ZeRO-3)"),
    headroom: float = typer.Option(0.10, "--headroom",
                                   help="fraction of GPU memory kept free (CUDA context, fragmentation)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
) -> None:
    """What training PRESET needs under each strategy, and whether it fits the GPU."""
    # imported here, not at start-up: torch and the models take seconds to import
    from astrobio.models.language import LanguageConfig
    from astrobio.models.memory import (count_parameters, default_text_tokens, language_parameter_count,
                                        plan_memory, plan_training, verdict)

    train_cfg = TrainConfig.for_preset(preset)  # what `astrobio train --preset PRESET` runs by default
    micro_batch_size = micro_batch_size or train_cfg.batch_size
    seq_len = seq_len or default_text_tokens()
    rows = plan_memory(preset, gpu_memory_gb, micro_batch_size=micro_batch_size, seq_len=seq_len,
                       component=component, num_gpus=num_gpus, headroom=headroom)
    if component == "system":
        counts = count_parameters(preset)
    else:
        counts = {"language": language_parameter_count(LanguageConfig.from_name(preset))}
    line = verdict(rows, preset, gpu_memory_gb)
    if component == "system":
        runs = {d: plan_training(train_cfg.replace(batch_size=micro_batch_size), d, seq_len, gpu_memory_gb)
                for d in ("cuda", "cpu")}
        line += (f". `astrobio train STORE --out RUN --preset {preset}` runs '{runs['cuda'].strategy}' on a GPU "
                 f"({runs['cuda'].total_gb:.2f} GiB), '{runs['cpu'].strategy}' on CPU "
                 f"({runs['cpu'].total_gb:.2f} GiB)")
    if as_json:
        typer.echo(json.dumps({"preset": preset, "gpu_memory_gb": gpu_memory_gb, "num_gpus": num_gpus,
                               "parameters": counts, "rows": [r.to_dict() for r in rows], "verdict": line},
                              indent=2))
        return
    _print_plan(rows, counts, line, f"{preset} ({component}), micro-batch {micro_batch_size}, {num_gpus} × "
                                    f"{gpu_memory_gb:g} GiB, headroom {headroom:.0%}")


def _print_plan(rows, counts: dict[str, int], line: str, title: str) -> None:
    console = Console(width=max(Console().width, 132))
    console.print("parameters: " + ", ".join(f"{k} {v / 1e6:,.2f}M" for k, v in counts.items()))
    table = Table(title=title)
    for col in ("strategy", "weights", "grads", "optimizer", "activations", "GPU total", "CPU", "fits", "on CPU"):
        table.add_column(col, justify="left" if col in ("strategy", "on CPU") else "right", no_wrap=True)
    for r in rows:
        table.add_row(r.strategy, f"{r.weights_gb:.2f}", f"{r.gradients_gb:.2f}", f"{r.optimizer_gb:.2f}",
                      f"{r.activations_gb:.2f}", f"{r.total_gb:.2f}", f"{r.cpu_gb:.2f}",
                      "[green]yes[/]" if r.fits else "[red]no[/]", r.on_cpu)
    console.print(table)
    console.print("GiB per GPU. " + line)


def register(app: typer.Typer) -> None:
    app.command()(memory)

"""Experiment tracking (TensorBoard offline by default; wandb / MLflow when installed) and run info.

Named `tracking` rather than `logging` so it never shadows the standard library module.
The trainer always writes `history.jsonl` itself; trackers are an extra view of the same numbers.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch

from astrobio import __version__
from astrobio.errors import InputValidationError
from astrobio.io import git_revision, source_sha256


class Tracker:
    """No-op tracker ('none'); the base of the others."""

    def log_config(self, config: dict[str, Any]) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        pass

    def close(self) -> None:
        pass


class TensorBoardTracker(Tracker):
    def __init__(self, log_dir: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir))

    def log_config(self, config: dict[str, Any]) -> None:
        self.writer.add_text("run_info", "```\n" + json.dumps(config, indent=2, default=str) + "\n```", 0)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbTracker(Tracker):
    def __init__(self, run_dir: Path, name: str):
        import wandb

        # Offline unless the user configured WANDB_MODE: the package never needs the network.
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "astrobio"), name=name, dir=str(run_dir),
                              mode=os.environ.get("WANDB_MODE", "offline"))

    def log_config(self, config: dict[str, Any]) -> None:
        self.run.config.update(config, allow_val_change=True)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(metrics, step=step)

    def close(self) -> None:
        self.run.finish()


class MlflowTracker(Tracker):
    def __init__(self, run_dir: Path, name: str):
        import mlflow

        # A local file store inside the run directory unless MLFLOW_TRACKING_URI points elsewhere.
        if "MLFLOW_TRACKING_URI" not in os.environ:
            mlflow.set_tracking_uri((run_dir / "mlruns").resolve().as_uri())
        self.mlflow = mlflow
        self.run = mlflow.start_run(run_name=name)

    def log_config(self, config: dict[str, Any]) -> None:
        self.mlflow.log_dict(config, "run_info.json")

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.mlflow.log_metrics({k.replace("/", "_"): v for k, v in metrics.items()}, step=step)

    def close(self) -> None:
        self.mlflow.end_run()


_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}


def make_tracker(kind: str, run_dir: str | Path) -> Tracker:
    """Build the tracker named `kind`; a clear error when its package is not installed."""
    run_dir = Path(run_dir)
    if kind == "none":
        return Tracker()
    if kind not in _PACKAGES:
        raise InputValidationError("tracking", kind, "one of ('tensorboard', 'wandb', 'mlflow', 'none')")
    try:
        if kind == "tensorboard":
            return TensorBoardTracker(run_dir / "tensorboard")
        if kind == "wandb":
            return WandbTracker(run_dir, run_dir.name)
        return MlflowTracker(run_dir, run_dir.name)
    except ModuleNotFoundError as exc:
        raise InputValidationError(
            "tracking", kind, f"an installed tracker: `pip install {_PACKAGES[kind]}` "
                              f"(missing module {exc.name!r}), or --tracking none / tensorboard") from None


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str | None:
    """The CPU's model name from `cpuinfo` (Linux), else None. Recorded because float results, and so a store's
    contents and a training curve, can differ between CPUs: numpy and torch pick SIMD kernels (AVX2, AVX-512)
    by what the CPU offers, and those round differently."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model") and value.strip():
            return value.strip()
    return None


def environment_info(device: torch.device, world_size: int = 1) -> dict[str, Any]:
    """What a reader needs to reproduce a run's numbers."""
    info: dict[str, Any] = {
        "astrobio_version": __version__,
        "git_revision": git_revision(),
        "source_sha256": source_sha256(),  # the package source that ran (a dirty tree or PYTHONPATH shows here)
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),  # the SIMD kernels torch runs
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "world_size": world_size,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 1e9, 1),
                    cuda=torch.version.cuda)
    return info

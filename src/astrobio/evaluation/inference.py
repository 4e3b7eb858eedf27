"""Load a trained run and run the model over a dataset (shared by evaluate and predict)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from astrobio.errors import StorageError


@dataclass
class LoadedRun:
    model: torch.nn.Module
    config: dict  # the checkpoint's run config (train + system + data)
    data_path: Path
    seed: int


def _checkpoint_path(run_dir: Path) -> Path:
    for name in ("best.pt", "last.pt"):
        p = run_dir / "checkpoints" / name
        if p.is_file():
            return p
    raise StorageError(f"no checkpoint in {run_dir / 'checkpoints'}: train first (astrobio train ... --out {run_dir})")


def load_trained(run_dir: str | Path, data: str | Path | None = None, device: str = "cpu") -> LoadedRun:
    """Rebuild the system from the checkpoint's config and load its best (else last) weights."""
    from astrobio.models import SystemConfig, UnifiedMultiModalSystem
    from astrobio.training.checkpoint import load_checkpoint

    run_dir = Path(run_dir)
    ckpt = load_checkpoint(_checkpoint_path(run_dir))
    cfg = ckpt["config"]
    model = UnifiedMultiModalSystem(SystemConfig.from_dict(cfg["system"]))
    model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    data_path = Path(data or cfg.get("data") or json.loads((run_dir / "run_info.json").read_text())["config"]["data"])
    return LoadedRun(model=model, config=cfg, data_path=data_path, seed=int(cfg["train"].get("seed", 0)))


@torch.no_grad()
def predict_dataset(model, dataset, batch_size: int = 32, drop: tuple[str, ...] = (), mc_samples: int = 0,
                    device: str = "cpu") -> dict[str, np.ndarray]:
    """Logits, regression (physical units), modality weights and modality mask for every item, in order.

    mc_samples > 0 also returns the per-class std of the softmax over that many MC-dropout passes.
    """
    from astrobio.data import make_dataloader

    loader = make_dataloader(dataset, batch_size=batch_size, shuffle=False, num_workers=0, seed=0)
    out = {"logits": [], "regression": [], "modality_weights": [], "modality_mask": [], "labels": [],
           "prob_std": []}
    for batch in loader:
        batch = batch.to(device)
        if drop:
            batch = batch.subset(drop)
        model.eval()
        o = model(batch)
        stats = batch.regression_stats
        out["logits"].append(o["logits"].float().cpu().numpy())
        out["regression"].append((o["regression"].float() * stats["std"] + stats["mean"]).cpu().numpy())
        out["modality_weights"].append(o["modality_weights"].float().cpu().numpy())
        out["modality_mask"].append(batch.modality_mask.cpu().numpy())
        out["labels"].append(batch.labels.cpu().numpy())
        if mc_samples:
            _enable_dropout(model)
            probs = torch.stack([torch.softmax(model(batch)["logits"].float(), -1) for _ in range(mc_samples)])
            out["prob_std"].append(probs.std(0).cpu().numpy())
            model.eval()
    return {k: np.concatenate(v) if v else np.zeros((0,)) for k, v in out.items()}


def _enable_dropout(model: torch.nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.train()

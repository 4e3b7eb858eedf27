"""Load a trained run and run the model over a dataset (shared by evaluate and predict)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from astrobio.errors import StorageError, UnsafeCheckpointError

log = logging.getLogger("astrobio.evaluation")


@dataclass
class LoadedRun:
    model: torch.nn.Module
    config: dict  # the checkpoint's run config (train + system + data)
    data_path: Path
    seed: int
    # The normalisation statistics, tokenizer and grid the model was trained with (`PlanetRunDataset.data_state`):
    # every dataset built for this model uses it, never the store's current stats.json.
    data_state: dict[str, Any] | None = None

    def dataset(self, split: str, data: str | Path | None = None):
        """A split of the training store (or of `data`), served with the model's own data state."""
        from astrobio.data import PlanetRunDataset

        return PlanetRunDataset(data or self.data_path, split, seed=self.seed, like=self.data_state)


def _load_weights(run_dir: Path) -> dict[str, Any]:
    """The best checkpoint, else the last; an unreadable best.pt falls back to last.pt with a warning.
    A checkpoint that needs foreign code is refused, never skipped."""
    from astrobio.training.checkpoint import load_checkpoint

    paths = [p for p in (run_dir / "checkpoints" / n for n in ("best.pt", "last.pt")) if p.is_file()]
    if not paths:
        raise StorageError(f"no checkpoint in {run_dir / 'checkpoints'}: train first "
                           f"(astrobio train ... --out {run_dir})")
    if len(paths) == 2:
        try:
            return load_checkpoint(paths[0])
        except UnsafeCheckpointError:
            raise
        except StorageError as exc:
            log.warning("%s; using %s instead", exc, paths[1])
    return load_checkpoint(paths[-1])


def load_trained(run_dir: str | Path, data: str | Path | None = None, device: str = "cpu") -> LoadedRun:
    """Rebuild the system from the checkpoint's config and load its best (else last) weights and data state."""
    from astrobio.models import SystemConfig, UnifiedMultiModalSystem

    run_dir = Path(run_dir)
    ckpt = _load_weights(run_dir)
    if not ckpt.get("data_state"):
        raise StorageError(f"the checkpoint in {run_dir / 'checkpoints'} carries no data state (the normalisation "
                           "statistics and tokenizer it was trained with): retrain it with this astrobio version")
    cfg = ckpt["config"]
    model = UnifiedMultiModalSystem(SystemConfig.from_dict(cfg["system"]))
    if cfg["train"].get("lora_rank"):  # the adapters' module tree, as training built it
        from astrobio.training.setup import prepare_finetuning
        from astrobio.training.config import TrainConfig

        prepare_finetuning(model, TrainConfig.from_dict(cfg["train"]), load_language=False)
    model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    data_path = Path(data or cfg.get("data") or json.loads((run_dir / "run_info.json").read_text())["config"]["data"])
    return LoadedRun(model=model, config=cfg, data_path=data_path, seed=int(cfg["train"].get("seed", 0)),
                     data_state=ckpt["data_state"])


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

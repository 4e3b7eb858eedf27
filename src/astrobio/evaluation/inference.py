"""Load a trained run and run the model over a dataset (shared by evaluate and predict)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from astrobio.data import PlanetRunDataset
from astrobio.errors import StorageError, UnsafeCheckpointError
from astrobio.models import SystemConfig, UnifiedMultiModalSystem
from astrobio.training.checkpoint import load_checkpoint
from astrobio.training.config import TrainConfig
from astrobio.training.setup import prepare_finetuning

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
        return PlanetRunDataset(data or self.data_path, split, seed=self.seed, like=self.data_state)


def _load_weights(run_dir: Path) -> dict[str, Any]:
    """The best checkpoint, else the last; an unreadable best.pt falls back to last.pt with a warning.
    A checkpoint that needs foreign code is refused, never skipped."""
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
    run_dir = Path(run_dir)
    ckpt = _load_weights(run_dir)
    if not ckpt.get("data_state"):
        raise StorageError(f"the checkpoint in {run_dir / 'checkpoints'} carries no data state (the normalisation "
                           "statistics and tokenizer it was trained with): retrain it with this astrobio version")
    cfg = ckpt["config"]
    model = UnifiedMultiModalSystem(SystemConfig.from_dict(cfg["system"]))
    if cfg["train"].get("lora_rank"):  # the adapters' module tree, as training built it

        prepare_finetuning(model, TrainConfig.from_dict(cfg["train"]), load_language=False)
    model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    data_path = Path(data or cfg.get("data") or json.loads((run_dir / "run_info.json").read_text())["config"]["data"])
    return LoadedRun(model=model, config=cfg, data_path=data_path, seed=int(cfg["train"].get("seed", 0)),
                     data_state=ckpt["data_state"])


# Rows of one MC-dropout forward: the passes of a small batch are stacked into forwards of up to this many
# rows, so one planet's 20 passes are one forward of 20 rows instead of 20 forwards of one row (CPU time
# 0.18 s vs 0.31 s, tiny preset, 1 thread). Full batches gain nothing from stacking (160-row forwards
# were 15% slower per row than 32-row ones), so a batch of >= 32 keeps one forward per pass.
MC_ROWS = 32
# torch intra-op threads of inference. One: on the shared 2-core machine two OpenMP threads spin against
# the other processes (one planet: 10.2 s vs 0.8 s wall, median of 3; the 2,190-planet catalog's model
# phase: 308 s wall with 2 threads vs 3.6 s per 256 planets with 1), and the same count in every process
# keeps `astrobio predict` and POST /api/predict bit-identical (1 vs 2 threads differ at float32 round-off).
INFERENCE_THREADS = 1


@torch.no_grad()
def predict_dataset(model, dataset, batch_size: int = 32, drop: tuple[str, ...] = (), mc_samples: int = 0,
                    device: str = "cpu", seed: int = 0) -> dict[str, np.ndarray]:
    """Logits, regression (physical units), modality weights and modality mask for every item, in order.

    mc_samples > 0 also returns the per-class std of the softmax over that many MC-dropout passes. The
    passes draw their dropout masks from torch's RNG seeded with `seed` inside a forked RNG state, so the
    spread depends only on the inputs, their batching and `seed` (not on what ran before), and the
    caller's RNG state is left as it was. A model without active dropout (every nn.Dropout at p = 0, as
    the `tiny` preset) would give K copies of the deterministic pass: its spread is exactly 0 and the
    passes are not run.
    """
    collate = dataset.collate_fn()
    threads = torch.get_num_threads()
    stochastic = any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in model.modules())
    out = {"logits": [], "regression": [], "modality_weights": [], "modality_mask": [], "labels": [],
           "prob_std": []}
    torch.set_num_threads(INFERENCE_THREADS)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            _run_batches(model, dataset, collate, batch_size, device, drop, bool(mc_samples) and stochastic, mc_samples,
                         out)
    finally:
        torch.set_num_threads(threads)
    return {k: np.concatenate(v) if v else np.zeros((0,)) for k, v in out.items()}


def _run_batches(model, dataset, collate, batch_size: int, device: str, drop: tuple[str, ...], run_mc: bool,
                 mc_samples: int, out: dict[str, list]) -> None:
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        batch = _prepare(collate(items), device, drop)
        model.eval()
        o = model(batch, with_language_loss=False)
        stats = batch.regression_stats
        out["logits"].append(o["logits"].float().cpu().numpy())
        out["regression"].append((o["regression"].float() * stats["std"] + stats["mean"]).cpu().numpy())
        out["modality_weights"].append(o["modality_weights"].float().cpu().numpy())
        out["modality_mask"].append(batch.modality_mask.cpu().numpy())
        out["labels"].append(batch.labels.cpu().numpy())
        if run_mc:
            out["prob_std"].append(_mc_std(model, items, collate, device, drop, mc_samples, o["fused"]))
        elif mc_samples:
            out["prob_std"].append(np.zeros(out["logits"][-1].shape, dtype=np.float32))


def _prepare(batch, device: str, drop: tuple[str, ...]):
    batch = batch.to(device)
    return batch.subset(drop) if drop else batch


def _mc_std(model, items: list, collate, device: str, drop: tuple[str, ...], mc_samples: int,
            fused: torch.Tensor | None = None) -> np.ndarray:
    """Per-class std of the softmax over `mc_samples` dropout passes of `items`.

    Where every active dropout sits in the class/regression heads (the presets: `SystemConfig.dropout`), the
    trunk is deterministic in eval mode, so it runs once and only the classifier head is sampled: the same
    Monte-Carlo estimate at the cost of one forward (catalog predict with `small`: the model phase ~5x
    cheaper). Otherwise passes are stacked pass-major (rows p*B .. p*B+B-1 are pass p) into forwards of at
    most MC_ROWS rows. `fused`: the eval-mode pass's `fused` output of these items, when the caller has it."""
    heads_only = _dropout_only_in_heads(model)
    if heads_only and fused is None:  # the eval-mode trunk, once
        fused = model(_prepare(collate(items), device, drop), with_language_loss=False)["fused"]  # (B, D)
    _enable_dropout(model)
    try:
        if heads_only:
            logits = model.classifier(fused.repeat(mc_samples, 1)).float()  # (K*B, C), pass-major
            probs = [torch.softmax(logits, -1).reshape(mc_samples, len(items), -1)]
        else:
            per_forward = max(1, MC_ROWS // len(items))
            probs = []
            for done in range(0, mc_samples, per_forward):
                passes = min(per_forward, mc_samples - done)
                logits = model(_prepare(collate(items * passes), device, drop),
                               with_language_loss=False)["logits"].float()
                probs.append(torch.softmax(logits, -1).reshape(passes, len(items), -1))
    finally:
        model.eval()
    return torch.cat(probs).std(0).cpu().numpy()


HEADS = ("classifier", "regressor")  # UnifiedMultiModalSystem's heads: they read `fused` only


def _dropout_only_in_heads(model: torch.nn.Module) -> bool:
    active = [name for name, m in model.named_modules() if isinstance(m, torch.nn.Dropout) and m.p > 0]
    return hasattr(model, "classifier") and all(name.split(".")[0] in HEADS for name in active)


def _enable_dropout(model: torch.nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.train()

"""A tiny model, dataset and batch type that follow the trainer's contract (for fast, exact tests)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


@dataclass
class ToyBatch:
    run_ids: list[str]
    x: torch.Tensor  # (B, F)
    labels: torch.Tensor  # (B,)

    def to(self, device) -> "ToyBatch":
        return ToyBatch(self.run_ids, self.x.to(device), self.labels.to(device))

    def __len__(self) -> int:
        return len(self.run_ids)


class ToyDataset(Dataset):
    """n points in R^features; the class is the argmax of the first three coordinates (learnable)."""

    def __init__(self, n: int, features: int = 8, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, features, generator=g)
        self.y = self.x[:, :3].argmax(-1)
        self.ids = [f"run-{seed}-{i:04d}" for i in range(n)]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int):
        return self.ids[i], self.x[i], self.y[i]


def toy_collate(items) -> ToyBatch:
    ids, xs, ys = zip(*items)
    return ToyBatch(list(ids), torch.stack(xs), torch.stack(ys))


def toy_loader(dataset, *, batch_size, sampler, num_workers, seed):
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      collate_fn=toy_collate, generator=torch.Generator().manual_seed(seed))


class ToyModel(nn.Module):
    def __init__(self, features: int = 8, hidden: int = 16, dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, 3))

    def forward(self, batch: ToyBatch) -> dict[str, torch.Tensor]:
        return {"logits": self.net(batch.x)}  # (B, 3)


def toy_loss(outputs, batch) -> dict[str, torch.Tensor]:
    ce = nn.functional.cross_entropy(outputs["logits"], batch.labels)
    margin = outputs["logits"].pow(2).mean()
    return {"total": ce + 0.01 * margin, "classification": ce, "margin": margin}

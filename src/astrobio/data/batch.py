"""`MultiModalBatch`: the one container every model, loss and evaluation reads (docs/architecture.md).

Missing modalities are represented so that every tensor stays finite and every model can run on the
whole batch without special cases; `modality_mask` says what is real:
- datacube: zeros, mask False.
- graph: a single all-zero node with no edges per missing graph. One node (not zero nodes) keeps
  every graph in the PyG `Batch` non-empty, so mean/attention pooling over a graph never divides by
  zero or softmaxes over nothing, and `batch.num_graphs == B` always.
- spectrum: zeros `[n_bins, 3]`, mask False; its reading (the observer's retrieval) zeros too.
- text: a single attended `<bos>` token followed by padding. At least one attended token per row keeps
  scaled-dot-product attention from softmaxing an all-masked row into NaN.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable

import torch

from astrobio.data.tokenizer import BOS_ID, PAD_ID
from astrobio.errors import InputValidationError
from astrobio.world.types import MODALITIES
GRAPH_NODE_FEATURES = 64  # metabolic_graph node feature width (docs/architecture.md)


def missing_graph(num_node_features: int = GRAPH_NODE_FEATURES):
    """The stand-in for a missing metabolic graph: one zero node, no edges."""
    from torch_geometric.data import Data

    return Data(x=torch.zeros(1, num_node_features, dtype=torch.float32),
                edge_index=torch.zeros(2, 0, dtype=torch.int64))


def _move(value: Any, fn) -> Any:
    """Apply `fn` to every tensor (and PyG object) inside value; leave other values as they are."""
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, dict):
        return {k: _move(v, fn) for k, v in value.items()}
    if hasattr(value, "apply") and hasattr(value, "num_graphs"):  # torch_geometric Batch
        return copy.copy(value).apply(fn)  # shallow copy: apply() swaps tensors in place, keep the original
    return value


@dataclass
class MultiModalBatch:
    """A collated batch of planet runs. B = batch size; shapes follow docs/architecture.md."""

    run_ids: list[str]
    datacube: torch.Tensor  # (B, 2, 12, lat, lon, lev) float32, prior run, normalised
    datacube_target: torch.Tensor  # (B, 2, 12, lat, lon, lev) float32, true run, normalised
    datacube_stats: dict[str, torch.Tensor]  # mean, std: (2,) float32; raw = x * std + mean
    sigma_levels: torch.Tensor  # (lev,) float32, p / p_surface
    lat_deg: torch.Tensor  # (lat,) float32
    graph: Any  # torch_geometric Batch: x (N, 64), edge_index (2, E), batch (N,)
    spectrum: torch.Tensor  # (B, n_bins, 3) float32: wavelength um, depth ppm, sigma ppm (raw)
    input_ids: torch.Tensor  # (B, T) int64, PAD_ID-padded
    attention_mask: torch.Tensor  # (B, T) int64, 1 = token
    numerical_data: torch.Tensor  # (B, F) float32, standardised, 0 where missing
    numerical_mask: torch.Tensor  # (B, F) bool, True = present
    physics_features: torch.Tensor  # (B, 4) float32
    spectrum_reading: torch.Tensor  # (B, R) float32, SPECTRUM_READING_FIELDS, 0 where unknown
    spectrum_reading_mask: torch.Tensor  # (B, R) bool, True = the observer's retrieval of a spectrum gave it
    instellation_wm2: torch.Tensor  # (B,) float32
    surface_pressure_bar: torch.Tensor  # (B,) float32, prior atmosphere
    labels: torch.Tensor  # (B,) int64 habitability_class
    regression_targets: torch.Tensor  # (B, 7) float32, standardised
    regression_stats: dict[str, torch.Tensor]  # mean, std: (7,) float32
    modality_mask: torch.Tensor  # (B, 4) bool, order MODALITIES
    privileged_targets: torch.Tensor | None = None  # (B, 4) float32, PRIVILEGED_KEYS standardised; targets only

    def __len__(self) -> int:
        return len(self.run_ids)

    def _map(self, fn) -> "MultiModalBatch":
        return MultiModalBatch(**{f.name: _move(getattr(self, f.name), fn) for f in dataclasses.fields(self)})

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "MultiModalBatch":
        """A copy with every tensor (graph and stats dicts included) on `device`."""
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> "MultiModalBatch":
        """Page-locked copy for fast host→device copies; the DataLoader calls this when pin_memory=True.

        Without an accelerator there is no device to copy to and torch cannot pin, so the batch is
        returned unchanged.
        """
        if not torch.accelerator.is_available():
            return self
        return self._map(lambda t: t.pin_memory())

    def subset(self, modalities_to_drop: Iterable[str]) -> "MultiModalBatch":
        """A copy with the named modalities removed: mask False and input replaced by the missing value.

        The targets (datacube_target, labels, regression_targets, privileged_targets) are kept; only inputs are
        dropped.
        """
        drop = list(modalities_to_drop)
        for name in drop:
            if name not in MODALITIES:
                raise InputValidationError("modality", name, f"one of {MODALITIES}")
        changes: dict[str, Any] = {"modality_mask": self.modality_mask.clone()}
        for name in drop:
            changes["modality_mask"][:, MODALITIES.index(name)] = False
        if "datacube" in drop:
            changes["datacube"] = torch.zeros_like(self.datacube)
        if "spectrum" in drop:  # its retrieval's reading goes with it
            changes["spectrum"] = torch.zeros_like(self.spectrum)
            changes["spectrum_reading"] = torch.zeros_like(self.spectrum_reading)
            changes["spectrum_reading_mask"] = torch.zeros_like(self.spectrum_reading_mask)
        if "text" in drop:
            ids = torch.full_like(self.input_ids, PAD_ID)
            ids[:, 0] = BOS_ID
            attn = torch.zeros_like(self.attention_mask)
            attn[:, 0] = 1
            changes["input_ids"], changes["attention_mask"] = ids, attn
        if "graph" in drop:
            changes["graph"] = _missing_graph_batch(len(self), self.graph.x.shape[-1], self.graph.x.device)
        return dataclasses.replace(self, **changes)

    def drop_modality(self, name: str) -> "MultiModalBatch":
        """A copy with one modality removed (see `subset`)."""
        return self.subset([name])


def _missing_graph_batch(batch_size: int, num_node_features: int, device: torch.device):
    from torch_geometric.data import Batch

    graphs = [missing_graph(num_node_features) for _ in range(batch_size)]
    return Batch.from_data_list(graphs).to(device)

"""Parameter counts (meta device) and a training-memory planner for the presets.

Byte accounting per parameter (Ψ = parameter count), after ZeRO (Rajbhandari et al. 2020, §3.1):
mixed-precision AdamW holds bf16 weights (2Ψ) + bf16 gradients (2Ψ) + fp32 master weights, momentum
and variance (12Ψ) = 16Ψ; plain fp32 AdamW holds 4Ψ + 4Ψ + 8Ψ = 16Ψ as well. 8-bit AdamW (Dettmers et
al. 2022, block-wise quantisation, blocks of 2048 with one fp32 absmax each) stores momentum and variance
in 1 byte each: 2Ψ + 8Ψ/2048. ZeRO-Offload (Ren et al. 2021) keeps the fp32 master weights and Adam
states (12Ψ) plus a copy of the bf16 gradients (2Ψ) in CPU memory; the GPU holds bf16 weights and
gradients. LoRA (Hu et al. 2021) freezes the bf16 base (2Ψ) and trains r·(in+out) adapter parameters
per adapted matrix at 16 bytes each. QLoRA (Dettmers et al. 2023) stores the base linear weights in NF4:
4 bits + double-quantised constants (an 8-bit absmax per 64 weights and an fp32 constant per 256 of
those: 0.127 bit/param, their §3) = 0.5159 bytes/param; peft's `prepare_model_for_kbit_training` keeps the
non-quantised parameters (embeddings, norms, LM head) in fp32.

Activations (what autograd saves for backward, the logits held until the loss, and the LM loss's
gradient buffers that coexist with them when backward starts) come from:
- the language model: an exact count of the tensors our Llama implementation saves (derived op by op
  below; the Korthikanti et al. 2022 `sbh(34 + 5as/h)` analysis for GPT, redone for RMSNorm, RoPE,
  GQA with repeat_kv, SwiGLU, fused SDPA attention with its fp32 log-sum-exp, and no dropout masks);
  with activation checkpointing only each layer's input is kept, plus one layer recomputed in backward;
- every other part of the system: a trace of its forward on the meta device (shapes only, no memory)
  that sums the bytes of the tensors autograd saves (`saved_tensors_hooks`), deduplicated by storage;
  the graph VAE cannot run on meta (its positional encoding and negative sampling depend on the edge
  values), so it is traced on CPU at depths 1 and 2 and extrapolated linearly in depth (its layers are
  identical), on a synthetic metabolic network of `graph_nodes` nodes and `graph_edges` edges.
Encoders other than the LM are counted without checkpointing (an upper bound for their activations).
A row fits when its GPU total is at most (1 − headroom) of the GPU memory; the headroom covers the CUDA
context (~0.5–1 GiB), cuBLAS workspaces and allocator fragmentation.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from astrobio.data.dataset import PlanetRunDataset
from astrobio.errors import InputValidationError
from astrobio.models.graph import MetabolicGraphVAE
from astrobio.models.language import ConditionedLlama, LanguageConfig
from astrobio.models.system import SystemConfig, UnifiedMultiModalSystem
from astrobio.world.climate import GRIDS

GIB = 2**30
COMPONENTS = ("datacube", "graph", "spectrum", "language", "fusion")
ADAM8_STATE_BYTES = 2 + 2 * 4 / 2048  # two 8-bit states + one fp32 absmax per 2048-value block each
NF4_BYTES = 0.5 + 0.127 / 8  # 4-bit NF4 + double-quantised constants (QLoRA §3: 0.127 bit/param)
DEFAULT_HEADROOM = 0.10


# ---- parameter counts ---------------------------------------------------------------------------
def count_module_parameters(module: nn.Module) -> int:
    """Exact number of parameter elements (shared parameters counted once)."""
    return sum(p.numel() for p in module.parameters())


def language_parameter_count(config: LanguageConfig) -> int:
    """Parameters of a ConditionedLlama, instantiated on the meta device."""
    with torch.device("meta"):
        return count_module_parameters(ConditionedLlama(config))


def _meta_system(preset: str, **overrides: Any) -> nn.Module:
    config = SystemConfig.from_name(preset, **overrides)
    with torch.device("meta"):
        return UnifiedMultiModalSystem(config)


def _component_parameters(system: nn.Module) -> dict[str, list[nn.Parameter]]:
    """Parameters per component; `fusion` is everything that is not one of the four encoders."""
    encoders = {name: getattr(system, name) for name in ("datacube", "graph", "spectrum", "language")}
    owned = {id(p) for m in encoders.values() for p in m.parameters()}
    parts = {name: list(m.parameters()) for name, m in encoders.items()}
    parts["fusion"] = [p for p in system.parameters() if id(p) not in owned]
    return parts


def count_parameters(preset: str) -> dict[str, int]:
    """Exact parameter counts of `SystemConfig.from_name(preset)`, built on the meta device:
    keys `datacube`, `graph`, `spectrum`, `language`, `fusion` (fusion + projections + heads), `total`."""
    system = _meta_system(preset)
    counts = {k: sum(p.numel() for p in v) for k, v in _component_parameters(system).items()}
    counts = {k: counts[k] for k in COMPONENTS}
    counts["total"] = count_module_parameters(system)
    return counts


# ---- activations ----------------------------------------------------------------------------------
def _storage_key(t: torch.Tensor) -> tuple[Any, int]:
    """(identity, bytes) of the memory behind `t`; meta tensors have no addresses, so use the view base."""
    if t.device.type == "meta":
        base = t._base if t._base is not None else t
        return id(base), base.numel() * base.element_size()
    storage = t.untyped_storage()
    return (t.device.type, storage.data_ptr()), storage.nbytes()


class _FusedAttentionShapes(torch.autograd.Function):
    """Shape-only stand-in for a fused SDPA kernel on the meta device. Meta dispatch takes SDPA's math
    path, which saves the [B, nh, L, L] probabilities; FlashAttention (Dao et al. 2022) and the
    memory-efficient kernel save q, k, v, the output, an fp32 log-sum-exp [B, nh, L] and the bias."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                bias: torch.Tensor | None) -> torch.Tensor:
        out = q.new_empty(q.shape[:-1] + (v.shape[-1],))
        lse = torch.empty(q.shape[:-1], dtype=torch.float32, device=q.device)
        ctx.save_for_backward(q, k, v, out, lse, *([] if bias is None else [bias]))
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        raise RuntimeError("shape-only attention used for memory tracing cannot be differentiated")


def _fused_sdpa_shapes(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None = None,
                       *args: Any, **kwargs: Any) -> torch.Tensor:
    return _FusedAttentionShapes.apply(q, k, v, attn_mask)


def trace_activation_bytes(fn: Callable[[], Any], params: list[torch.Tensor]) -> tuple[Any, int]:
    """Run `fn()` and return (its result, bytes of activations it leaves for backward).

    Counted: every tensor autograd saves for backward plus the tensors in the result (e.g. logits,
    alive until the loss), deduplicated by storage, excluding the parameters `params`. On the meta
    device, SDPA is traced as a fused kernel (see `_FusedAttentionShapes`, swapped into
    `torch.nn.functional` for the duration of the trace; not thread-safe).
    """
    if any(p.device.type == "meta" for p in params):
        sdpa = torch.nn.functional.scaled_dot_product_attention
        torch.nn.functional.scaled_dot_product_attention = _fused_sdpa_shapes
        try:
            return _trace(fn, params)
        finally:
            torch.nn.functional.scaled_dot_product_attention = sdpa
    return _trace(fn, params)


def _trace(fn: Callable[[], Any], params: list[torch.Tensor]) -> tuple[Any, int]:
    result, sizes = _trace_sizes(fn, params)
    return result, sum(nbytes for nbytes, _ in sizes.values())


def _trace_sizes(fn: Callable[[], Any], params: list[torch.Tensor],
                 observer: Callable[[torch.Tensor], Any] | None = None) -> tuple[Any, dict[Any, tuple[int, bool]]]:
    """(result, storage key → (bytes, is floating point)) of the activations `fn` leaves for backward;
    `observer` also sees every saved tensor (only the innermost saved-tensor hook runs)."""
    param_keys = {_storage_key(p)[0] for p in params}
    keep: list[torch.Tensor] = []  # keeps meta views alive so ids stay unique
    seen: dict[Any, tuple[int, bool]] = {}

    def add(t: torch.Tensor) -> None:
        key, nbytes = _storage_key(t)
        if key not in param_keys and not isinstance(t, nn.Parameter) and not isinstance(t._base, nn.Parameter):
            seen[key] = (nbytes, t.is_floating_point())
            keep.append(t)

    def pack(t: torch.Tensor) -> torch.Tensor:
        add(t)
        if observer is not None:
            observer(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        result = fn()
    stack = [result]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            add(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return result, seen


def language_activation_bytes(config: LanguageConfig, batch_size: int, seq_len: int, dtype_bytes: int,
                              checkpointing: bool = False, conditioned: bool = True) -> int:
    """Bytes our ConditionedLlama keeps for backward in one training forward (text of `seq_len` tokens).

    Per layer and position (h hidden, I MLP width, a heads, e = activation bytes):
      2 RMSNorms × (fp32 input 4h + fp32 rsqrt 4 + normalised e·h + output e·h)
      + attention: q, and k, v expanded to a heads by repeat_kv (3e·h), SDPA output e·h, its fp32
        log-sum-exp 4a, and the o_proj input (a copy after the head transpose) e·h
      + SwiGLU: gate out, silu out, up out, their product (4e·I).
    Once per forward: token ids (int64), RoPE cos/sin (2e·hd per position), the shared additive mask
    (e·L² per sequence), final norm, the prefix MLPs, the logits (e·V per text token) and the loss's
    fp32 log-softmax and target (4V + 8 per text token: the loss shifts the targets, so the last position
    enters with an ignored one). With `loss_positions` > 0 (training) only k = min(loss_positions, B·T)
    positions reach the head and the logits are not returned: the loss keeps its fp32 log-softmax and
    target (4V + 8) per sampled position. With checkpointing a layer keeps only its input (e·h) and
    backward recomputes one layer at a time.
    """
    c = config
    b, t, e = batch_size, seq_len, dtype_bytes
    h, i, a = c.hidden_size, c.intermediate_size, c.num_attention_heads
    n_prefix = c.n_prefix_total if conditioned else 0
    positions = b * (t + n_prefix)
    norm = 4 * h + 4 + 2 * e * h
    layer = positions * (2 * norm + 5 * e * h + 4 * a + 4 * e * i)
    layers = (c.num_hidden_layers * positions * e * h + layer) if checkpointing else c.num_hidden_layers * layer
    prefix = b * (e * (2 * c.n_numerical + 2 * h) + e * (c.spectral_dim + 2 * h)) if n_prefix else 0
    once = (8 * b * t + 2 * e * positions * c.head_dim + e * b * (t + n_prefix) ** 2 + positions * norm
            + prefix + _head_bytes(c, b, t, e) + 4)
    return layers + once


def _head_positions(config: LanguageConfig, batch_size: int, seq_len: int) -> int:
    """Text positions whose logits a training step computes (`ConditionedLlama.forward`)."""
    n = batch_size * seq_len
    return min(config.loss_positions, n) if config.loss_positions else n


def _head_bytes(config: LanguageConfig, batch_size: int, seq_len: int, e: int) -> int:
    """Kept for backward at the LM head: per head position the fp32 log-softmax and target (4V + 8), and the
    logits themselves (e·V) where the forward returns them (every position, no sampling)."""
    k, v = _head_positions(config, batch_size, seq_len), config.vocab_size
    return k * (4 * v + 8) + (0 if config.loss_positions else e * k * v)


def loss_backward_bytes(config: LanguageConfig, batch_size: int, seq_len: int, dtype_bytes: int) -> int:
    """Gradient buffers of the LM loss that coexist with all activations at the start of backward:
    d(log-softmax input) in fp32 (4V per text token, see `causal_lm_loss`) and d(logits) (e·V per text token)."""
    k = _head_positions(config, batch_size, seq_len)
    return (4 + dtype_bytes) * k * config.vocab_size


# ---- strategies ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Strategy:
    """How one training configuration stores each parameter (bytes per parameter)."""

    name: str
    """Short id used on the command line."""
    description: str
    """What the strategy does, for the table."""
    weight_bytes: float
    """GPU bytes per parameter for the weights."""
    grad_bytes: float
    """GPU bytes per trainable parameter for the gradients."""
    optimizer_bytes: float
    """GPU bytes per trainable parameter for master weights + optimizer states."""
    cpu_bytes: float
    """CPU bytes per trainable parameter (offloaded master weights, states, gradient copy)."""
    activation_bytes: int
    """Bytes per activation element (4 fp32, 2 bf16)."""
    checkpointing: bool
    """Activation checkpointing of the language model's decoder layers."""
    lm_mode: str = "full"
    """"full", "lora" (frozen bf16 base + adapters) or "qlora" (NF4 base + adapters)."""
    lora_r: int = 8
    """Adapter rank for lm_mode lora/qlora."""
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    """Adapted LM matrices for lm_mode lora/qlora."""
    rest: Strategy | None = None
    """lora/qlora: the strategy of the fully trained parts and the adapters (None = 8-bit AdamW for the
    encoders, fusion and heads, bf16 mixed for the adapters: the rows below)."""


_BF16_ADAM = 2 + 2 + 12  # ZeRO's 16 bytes/param
_ADAM8 = Strategy("bf16-ckpt-adam8bit", "bf16 mixed + checkpointing + 8-bit AdamW", 2, 2, 4 + ADAM8_STATE_BYTES,
                  0, 2, True)
STRATEGIES: dict[str, Strategy] = {s.name: s for s in (
    Strategy("fp32", "fp32 weights, grads, AdamW", 4, 4, 8, 0, 4, False),
    Strategy("bf16", "bf16 mixed precision (fp32 master + AdamW)", 2, 2, 12, 0, 2, False),
    Strategy("bf16-ckpt", "bf16 mixed + activation checkpointing", 2, 2, 12, 0, 2, True),
    _ADAM8,
    Strategy("bf16-ckpt-offload", "bf16 mixed + checkpointing + optimizer on CPU (ZeRO-Offload)", 2, 2, 0,
             12 + 2, 2, True),
    Strategy("lora", "LM: frozen bf16 base + LoRA r=8 (q,k,v,o); others: 8-bit AdamW", 2, 0, 0, 0, 2, True,
             "lora", 8),
    Strategy("qlora", "LM: NF4 base + LoRA r=16 (all linear); others: 8-bit AdamW", NF4_BYTES, 0, 0, 0, 2, True,
             "qlora", 16, ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")),
)}


def _lm_linear_shapes(c: LanguageConfig) -> dict[str, tuple[int, int]]:
    kv = c.num_key_value_heads * c.head_dim
    h = c.hidden_size
    return {"q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h),
            "gate_proj": (h, c.intermediate_size), "up_proj": (h, c.intermediate_size),
            "down_proj": (c.intermediate_size, h)}


def _lm_weight_memory(c: LanguageConfig, n_lm: int, s: Strategy) -> tuple[float, int]:
    """(GPU bytes of the frozen LM base, trainable LM parameters) for lora/qlora."""
    shapes = _lm_linear_shapes(c)
    adapters = c.num_hidden_layers * s.lora_r * sum(i + o for n, (i, o) in shapes.items() if n in s.lora_targets)
    prefix = 0 if not c.n_prefix_tokens else (
        2 * c.n_numerical * c.hidden_size + c.hidden_size + c.hidden_size * c.n_prefix_tokens * c.hidden_size
        + c.n_prefix_tokens * c.hidden_size + c.spectral_dim * c.hidden_size + c.hidden_size
        + c.hidden_size * c.n_prefix_tokens * c.hidden_size + c.n_prefix_tokens * c.hidden_size)
    frozen = n_lm - prefix
    if s.lm_mode == "lora":
        return s.weight_bytes * frozen, adapters + prefix
    linear = c.num_hidden_layers * sum(i * o for i, o in shapes.values())
    return s.weight_bytes * linear + 4.0 * (frozen - linear), adapters + prefix  # peft upcasts the rest to fp32


# ---- component activations ----------------------------------------------------------------------
def _datacube_grid(n_levels: int) -> tuple[int, int, int]:
    for grid in GRIDS.values():
        if grid.nlev == n_levels:
            return grid.nlat, grid.nlon, grid.nlev
    raise InputValidationError("datacube.n_levels", n_levels, f"one of {[g.nlev for g in GRIDS.values()]}")


def _synthetic_graphs(n_graphs: int, nodes: int, edges: int, features: int, seed: int = 0):
    from torch_geometric.data import Batch, Data

    g = torch.Generator().manual_seed(seed)
    return Batch.from_data_list([Data(x=torch.randn(nodes, features, generator=g),
                                      edge_index=torch.randint(0, nodes, (2, edges), generator=g))
                                 for _ in range(n_graphs)])


def _graph_activation_bytes(trace: tuple[dict[Any, tuple[int, bool]], frozenset], n_layers: int,
                            dtype_bytes: int) -> int:
    """Graph VAE activation bytes at `dtype_bytes` per floating element, from `_graph_trace`."""
    sizes, layer_keys = trace

    def scaled(key: Any) -> float:
        nbytes, floating = sizes[key]
        return nbytes * dtype_bytes / 4 if floating else nbytes

    per_layer = sum(scaled(k) for k in sizes if k in layer_keys)
    return int(sum(scaled(k) for k in sizes) + per_layer * (n_layers - 1))


def _graph_trace(config: Any, batch: int, nodes: int, edges: int) -> tuple[dict[Any, tuple[int, bool]], frozenset]:
    """Trace a one-layer copy of the graph VAE on CPU in fp32 (bf16 is 20-45x slower on CPU): the saved
    tensors (key → bytes, floating) and the keys saved inside its layer, to extrapolate in depth."""
    data = _synthetic_graphs(batch, nodes, edges, config.node_features)
    torch.manual_seed(0)
    model = MetabolicGraphVAE(dataclasses.replace(config, n_layers=1)).train()
    inside: list[bool] = [False]
    layer_keys: set[Any] = set()

    def note(t: torch.Tensor) -> None:
        if inside[0]:
            layer_keys.add(_storage_key(t)[0])

    pre = model.layers[0].register_forward_pre_hook(lambda *_: inside.__setitem__(0, True))
    post = model.layers[0].register_forward_hook(lambda *_: inside.__setitem__(0, False))
    try:
        _, sizes = _trace_sizes(lambda: model(data), list(model.parameters()), note)
    finally:
        pre.remove()
        post.remove()
    return sizes, frozenset(layer_keys)


def _datacube_input(cfg: Any, b: int, dtype: torch.dtype) -> torch.Tensor:
    with torch.device("meta"):
        return torch.empty(b, len(cfg.datacube.var_names), 12, *_datacube_grid(cfg.datacube.n_levels), dtype=dtype)


def _encoder_activations(system: nn.Module, b: int, dtype_bytes: int) -> dict[str, int]:
    """Meta traces of the datacube and spectrum encoders and of projections + fusion + heads."""
    cfg = system.config
    dtype = {4: torch.float32, 2: torch.bfloat16}[dtype_bytes]
    system = system.to(dtype).train()
    out: dict[str, int] = {}
    cube = _datacube_input(cfg, b, dtype)
    with torch.device("meta"):
        spec = torch.empty(b, cfg.spectrum.n_bins, 3, dtype=dtype)
    dc, out["datacube"] = trace_activation_bytes(lambda: system.datacube(cube), list(system.datacube.parameters()))
    sp, out["spectrum"] = trace_activation_bytes(lambda: system.spectrum(spec), list(system.spectrum.parameters()))
    with torch.device("meta"):
        feats = {"datacube": dc["features"], "graph": torch.empty(b, cfg.graph.hidden_dim, dtype=dtype),
                 "spectrum": sp["features"], "text": torch.empty(b, cfg.language.hidden_size, dtype=dtype)}
        mask = torch.ones(b, 4, dtype=torch.bool)
        physics = torch.empty(b, cfg.fusion.n_physics, dtype=dtype)

    def fuse() -> Any:
        fused = system.fusion({m: system.project[m](f) for m, f in feats.items()}, mask, physics)["fused"]
        return system.classifier(fused), system.regressor(fused)

    out["fusion"] = trace_activation_bytes(fuse, _component_parameters(system)["fusion"])[1]
    return out


def component_activation_bytes(preset: str, micro_batch_size: int, seq_len: int, dtype_bytes: int,
                               checkpointing: bool, graph_nodes: int = 1000, graph_edges: int = 3000
                               ) -> dict[str, int]:
    """Activation bytes per component for one micro-batch (see the module docstring for the methods)."""
    system = _meta_system(preset)
    cfg = system.config
    out = _encoder_activations(system, micro_batch_size, dtype_bytes)
    out["graph"] = _graph_activation_bytes(_graph_trace(cfg.graph, micro_batch_size, graph_nodes, graph_edges),
                                           cfg.graph.n_layers, dtype_bytes)
    out["language"] = (language_activation_bytes(cfg.language, micro_batch_size, seq_len, dtype_bytes, checkpointing)
                       + loss_backward_bytes(cfg.language, micro_batch_size, seq_len, dtype_bytes))
    return {k: out[k] for k in COMPONENTS}


# ---- the planner --------------------------------------------------------------------------------
@dataclass
class MemoryRow:
    """Memory of one strategy (GiB); `fits` compares `total_gb` with the usable GPU memory."""

    strategy: str
    description: str
    weights_gb: float
    gradients_gb: float
    optimizer_gb: float
    activations_gb: float
    total_gb: float
    cpu_gb: float
    fits: bool
    on_cpu: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _row(s: Strategy, counts: dict[str, int], acts: dict[str, int], lm_config: LanguageConfig,
         gpu_gb: float, headroom: float, num_gpus: int) -> MemoryRow:
    n_lm = counts.get("language", 0)
    n_rest = sum(v for k, v in counts.items() if k not in ("language", "total"))
    if s.lm_mode == "full":
        rest_s, weights, trainable = s, s.weight_bytes * n_lm, n_lm
    else:
        rest_s = s.rest or _ADAM8  # encoders, fusion and heads are trained fully
        weights, trainable = _lm_weight_memory(lm_config, n_lm, s)
        weights += (rest_s.weight_bytes if s.rest else 2.0) * trainable  # the adapters (and prefix MLPs)
    weights += rest_s.weight_bytes * n_rest
    trainable_full_bytes = ((s.grad_bytes, s.optimizer_bytes, s.cpu_bytes) if s.lm_mode == "full" else
                            (rest_s.grad_bytes, rest_s.optimizer_bytes, rest_s.cpu_bytes) if s.rest else (2, 12, 0))
    grads = trainable_full_bytes[0] * trainable + rest_s.grad_bytes * n_rest
    opt = trainable_full_bytes[1] * trainable + rest_s.optimizer_bytes * n_rest
    cpu = trainable_full_bytes[2] * trainable + rest_s.cpu_bytes * n_rest
    # ZeRO-3 / FSDP full sharding splits weights, gradients and optimizer states over the GPUs
    weights, grads, opt = weights / num_gpus, grads / num_gpus, opt / num_gpus
    act = float(sum(acts.values()))
    total = weights + grads + opt + act
    on_cpu = "master+Adam+grads" if s.cpu_bytes else "-"
    return MemoryRow(s.name, s.description, weights / GIB, grads / GIB, opt / GIB, act / GIB, total / GIB,
                     cpu / GIB, total / GIB <= (1 - headroom) * gpu_gb, on_cpu)


def plan_memory(preset: str, gpu_memory_gb: float, *, micro_batch_size: int = 1, seq_len: int | None = None,
                strategies: tuple[str | Strategy, ...] | None = None, component: str = "system", num_gpus: int = 1,
                headroom: float = DEFAULT_HEADROOM, graph_nodes: int = 1000, graph_edges: int = 3000,
                system_overrides: dict[str, Any] | None = None) -> list[MemoryRow]:
    """Memory needed to train `preset` under each strategy, and whether it fits `gpu_memory_gb` (GiB).

    component: "system" (all five parts) or "language" (the LM alone, e.g. the seed's 13B claim).
    seq_len: text tokens per sample (default: the LM's max_position_embeddings minus the prefix).
    num_gpus: shard weights/gradients/optimizer over this many GPUs (FSDP full sharding, ZeRO-3).
    system_overrides: `SystemConfig.from_name` overrides of the planned system (a run's `loss`:
    `TrainConfig.loss_config()`).
    """
    if gpu_memory_gb <= 0:
        raise InputValidationError("gpu_memory_gb", gpu_memory_gb, "> 0 GiB")
    if micro_batch_size < 1 or num_gpus < 1:
        raise InputValidationError("micro_batch_size/num_gpus", (micro_batch_size, num_gpus), "integers >= 1")
    if not 0 <= headroom < 1:
        raise InputValidationError("headroom", headroom, "a fraction in [0, 1)")
    if component not in ("system", "language"):
        raise InputValidationError("component", component, '"system" or "language"')
    names = tuple(STRATEGIES) if strategies is None else tuple(strategies)
    for name in names:
        if not isinstance(name, Strategy) and name not in STRATEGIES:
            raise InputValidationError("strategy", name, f"one of {list(STRATEGIES)}")
    system = None
    if component == "language":
        lm_config = LanguageConfig.from_name(preset)
        counts = {"language": language_parameter_count(lm_config)}
    else:
        system = _meta_system(preset, **(system_overrides or {}))
        lm_config = system.config.language
        counts = {k: sum(p.numel() for p in v) for k, v in _component_parameters(system).items()}
    if seq_len is None:
        seq_len = lm_config.max_position_embeddings - lm_config.n_prefix_total
    if not 2 <= seq_len <= lm_config.max_position_embeddings - lm_config.n_prefix_total:
        raise InputValidationError("seq_len", seq_len,
                                   f"2..{lm_config.max_position_embeddings - lm_config.n_prefix_total}")
    encoders: dict[int, dict[str, int]] = {}  # traced once per activation dtype
    graph_trace = None
    rows = []
    for name in names:
        s = name if isinstance(name, Strategy) else STRATEGIES[name]
        e = s.activation_bytes
        acts = {"language": language_activation_bytes(lm_config, micro_batch_size, seq_len, e, s.checkpointing)
                + loss_backward_bytes(lm_config, micro_batch_size, seq_len, e)}
        if system is not None:
            if e not in encoders:
                encoders[e] = _encoder_activations(system, micro_batch_size, e)
            if graph_trace is None:
                graph_trace = _graph_trace(system.config.graph, micro_batch_size, graph_nodes, graph_edges)
            acts.update(encoders[e], graph=_graph_activation_bytes(graph_trace, system.config.graph.n_layers, e))
        rows.append(_row(s, counts, acts, lm_config, gpu_memory_gb, headroom, num_gpus))
    return rows


def verdict(rows: list[MemoryRow], preset: str, gpu_memory_gb: float) -> str:
    """One line: the cheapest-to-train strategy that fits, or by how much the smallest misses."""
    fitting = [r for r in rows if r.fits]
    if fitting:
        first = fitting[0]
        return (f"{preset} fits {gpu_memory_gb:g} GiB with '{first.strategy}' ({first.total_gb:.1f} GiB); "
                f"{len(fitting)}/{len(rows)} strategies fit")
    best = min(rows, key=lambda r: r.total_gb)
    return (f"{preset} does not fit {gpu_memory_gb:g} GiB with any strategy; the smallest, '{best.strategy}', "
            f"needs {best.total_gb:.1f} GiB")


# ---- the plan of one training run ---------------------------------------------------------------
def training_strategy(cfg: Any, device_type: str) -> Strategy:
    """The strategy `astrobio train` runs for TrainConfig `cfg` on `device_type` ("cpu" / "cuda"): one of
    the table's rows when the flags are that row's, else the row adjusted to the flags (named with a suffix)."""
    precision = cfg.precision if cfg.precision != "auto" else ("bf16" if device_type == "cuda" else "fp32")
    ckpt, adam8 = bool(cfg.activation_checkpointing), cfg.optimizer == "adamw8bit"
    if precision == "fp32":
        full = STRATEGIES["fp32"]
        if adam8:
            full = dataclasses.replace(full, name="fp32-adam8bit", description="fp32 weights, grads, 8-bit AdamW",
                                       optimizer_bytes=ADAM8_STATE_BYTES)
    else:
        full = _ADAM8 if adam8 else STRATEGIES["bf16-ckpt" if ckpt else "bf16"]
    if full.checkpointing != ckpt:
        full = dataclasses.replace(full, name=full.name + ("+ckpt" if ckpt else "-no-ckpt"), checkpointing=ckpt)
    if not cfg.lora_rank:
        return full
    quant = cfg.language_quantization
    row = STRATEGIES["qlora" if quant != "none" else "lora"]
    s = dataclasses.replace(row, lora_r=int(cfg.lora_rank), lora_targets=tuple(cfg.lora_targets) or row.lora_targets,
                            checkpointing=ckpt or quant != "none")
    if quant == "8bit":
        s = dataclasses.replace(s, name="lora-int8", description="LM: int8 base + LoRA; others as the run",
                                weight_bytes=1.0)
    if full.name != _ADAM8.name:  # the rest is not trained as the row assumes (bf16 + ckpt + 8-bit AdamW)
        s = dataclasses.replace(s, name=f"{s.name}/{full.name}", rest=full,
                                weight_bytes=s.weight_bytes if quant != "none" else float(full.weight_bytes),
                                activation_bytes=full.activation_bytes)
    if s.lora_r != row.lora_r or s.lora_targets != row.lora_targets:
        s = dataclasses.replace(s, name=f"{s.name} r={s.lora_r}")
    return s


def plan_training(cfg: Any, device_type: str, text_tokens: int, gpu_memory_gb: float) -> MemoryRow:
    """The memory plan of exactly the run TrainConfig `cfg` describes: its preset, micro-batch, strategy and
    the dataset's text length (what `astrobio train` prints at start, and `astrobio memory` shows)."""
    return plan_memory(cfg.preset, gpu_memory_gb, micro_batch_size=cfg.batch_size, seq_len=text_tokens,
                       strategies=(training_strategy(cfg, device_type),),
                       system_overrides={"loss": cfg.loss_config()})[0]


def default_text_tokens() -> int:
    """Text tokens per sample that training uses by default (`PlanetRunDataset`'s `max_text_tokens`)."""
    return int(inspect.signature(PlanetRunDataset.__init__).parameters["max_text_tokens"].default)


def device_memory_gib(device: torch.device) -> float:
    """Total memory of `device` in GiB: the GPU's, or the host's physical memory for CPU training."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory / GIB
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB

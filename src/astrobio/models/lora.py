"""LoRA and QLoRA fine-tuning through `peft`, for any plain `nn.Module` (our LM, the fusion block).

LoRA (Hu et al. 2021, arXiv:2106.09685): a frozen weight W gets a trainable low-rank update
W + (alpha / r)·B·A with A ∈ R^{r×in}, B ∈ R^{out×r}; B starts at zero, so the adapted model starts
equal to the base one. QLoRA (Dettmers et al. 2023, arXiv:2305.14314): the frozen base is stored in
4-bit NormalFloat (NF4) with double-quantised constants, adapters on every linear layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from astrobio.errors import InputValidationError
from astrobio.models.language import ConditionedLlama

ATTENTION_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
ALL_LINEAR_TARGETS = ATTENTION_TARGETS + ("gate_proj", "up_proj", "down_proj")  # QLoRA paper: all linear layers
PREFIX_MODULES = ("numerical_prefix", "spectral_prefix")  # ConditionedLlama parts absent from a text-only base


def apply_lora(model: nn.Module, r: int = 8, alpha: int = 16, dropout: float = 0.0,
               target_modules: Sequence[str] | str = ATTENTION_TARGETS, modules_to_train: Sequence[str] = (),
               seed: int = 0) -> nn.Module:
    """Inject LoRA adapters in place (peft `inject_adapter_in_model`) and freeze everything else.

    target_modules: module-name suffixes (peft semantics) or one regex matched against full names.
    modules_to_train: name prefixes kept fully trainable (e.g. `PREFIX_MODULES` for a new projector).
    seed: the adapters' A matrices are drawn (Kaiming-uniform) from this seed.
    """
    from peft import LoraConfig, inject_adapter_in_model

    if int(r) < 1:
        raise InputValidationError("r", r, "a rank >= 1")
    if alpha <= 0:
        raise InputValidationError("alpha", alpha, "a positive scale")
    if not 0.0 <= dropout < 1.0:
        raise InputValidationError("dropout", dropout, "a probability in [0, 1)")
    names = [n for n, _ in model.named_modules()]
    if not isinstance(target_modules, str) and not any(n.split(".")[-1] in target_modules for n in names):
        raise InputValidationError("target_modules", tuple(target_modules), "names of Linear layers in the model")
    for prefix in modules_to_train:
        if prefix not in names:
            raise InputValidationError("modules_to_train", prefix, "names of submodules of the model")
    config = LoraConfig(r=int(r), lora_alpha=alpha, lora_dropout=dropout,
                        target_modules=target_modules if isinstance(target_modules, str) else list(target_modules))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = inject_adapter_in_model(config, model)
    for name, p in model.named_parameters():
        p.requires_grad = "lora_" in name or name.startswith(tuple(f"{m}." for m in modules_to_train))
    return model


def prepare_qlora(model: nn.Module, r: int = 16, alpha: int = 32, dropout: float = 0.05,
                  target_modules: Sequence[str] | str = ALL_LINEAR_TARGETS,
                  modules_to_train: Sequence[str] | None = None, gradient_checkpointing: bool = True,
                  seed: int = 0) -> nn.Module:
    """QLoRA on a 4-bit (or 8-bit) model: peft `prepare_model_for_kbit_training` (freeze the base,
    upcast non-quantised half-precision parameters such as norms to fp32), activation checkpointing,
    then LoRA adapters (defaults from the QLoRA paper's Llama runs: r=16 on 7B–13B scale with alpha 32,
    dropout 0.05 for ≤13B). Works for a HF `PreTrainedModel` and for `load_pretrained_llama(..., "4bit")`.
    """
    from peft import prepare_model_for_kbit_training

    is_ours = isinstance(model, ConditionedLlama)
    if is_ours and getattr(model, "quantization", None) is None:
        raise InputValidationError("model", type(model).__name__,
                                   'a quantised model (load_pretrained_llama(path, quantization="4bit"))')
    # ours checkpoints with use_reentrant=False, which needs no input-grad hook; HF models get peft's setup
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing and not is_ours,
                                            gradient_checkpointing_kwargs={"use_reentrant": False})
    if is_ours:
        model.config.gradient_checkpointing = gradient_checkpointing
    if modules_to_train is None:
        modules_to_train = PREFIX_MODULES if is_ours and model.config.n_prefix_tokens else ()
    return apply_lora(model, r=r, alpha=alpha, dropout=dropout, target_modules=target_modules,
                      modules_to_train=modules_to_train, seed=seed)


def lora_layers(model: nn.Module) -> list[nn.Module]:
    from peft.tuners.lora import LoraLayer

    return [m for m in model.modules() if isinstance(m, LoraLayer)]


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold B·A·alpha/r into the base weights (inference without adapter overhead); reversible."""
    for layer in lora_layers(model):
        layer.merge()
    return model


def unmerge_lora(model: nn.Module) -> nn.Module:
    """Undo `merge_lora`: subtract the adapter update from the base weights."""
    for layer in lora_layers(model):
        layer.unmerge()
    return model


def merge_and_unload_lora(model: nn.Module) -> nn.Module:
    """Merge the adapters and replace every LoRA wrapper by its (updated) base layer, in place."""
    from peft.tuners.lora import LoraLayer

    merge_lora(model)
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, LoraLayer):
                setattr(module, child_name, child.get_base_layer())
    return model


def trainable_parameters(model: nn.Module) -> dict[str, int | float]:
    """Counts of trainable and all parameters (4-bit packed weights counted as stored elements ×2)."""
    def numel(p: torch.Tensor) -> int:
        # bitsandbytes packs two 4-bit values per uint8 byte
        return p.numel() * 2 if p.__class__.__name__ == "Params4bit" else p.numel()

    trainable = sum(numel(p) for p in model.parameters() if p.requires_grad)
    total = sum(numel(p) for p in model.parameters())
    return {"trainable": trainable, "total": total, "fraction": trainable / max(total, 1)}

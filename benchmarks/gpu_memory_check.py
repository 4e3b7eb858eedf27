"""Measured GPU peak memory vs the memory planner (`astrobio memory`), on a CUDA device.

1. The seed's claim, language component: the xl (~13.1B) language model, bf16 frozen base + LoRA r=8
   on q/k/v/o, activation checkpointing, micro-batch 1, `--seq-len` tokens: one forward + backward +
   AdamW step on the adapters, randomly initialised (no checkpoint is downloaded). Compared with
   `plan_memory("xl", component="language")`'s "lora" row.
2. The `base` language model under the planner's "bf16-ckpt" strategy.

    python benchmarks/gpu_memory_check.py [--seq-len 512] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

GIB = 2**30


def _step_peak(model, seq_len: int, device) -> tuple[float, float]:
    """(peak GiB during one training step, seconds) for a random token batch of 1 × seq_len."""
    vocab = model.config.vocab_size
    ids = torch.randint(4, vocab, (1, seq_len), device=device)
    mask = torch.ones_like(ids)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, fused=True)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(ids, mask, labels=ids)
    out["loss"].backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / GIB, time.perf_counter() - t0


def _build(preset: str, device, dtype, checkpointing: bool):
    from astrobio.models.language import ConditionedLlama, LanguageConfig

    cfg = LanguageConfig.from_name(preset)
    cfg.gradient_checkpointing = checkpointing
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = ConditionedLlama(cfg)
    finally:
        torch.set_default_dtype(previous)
    return model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    from astrobio.models.lora import apply_lora, trainable_parameters
    from astrobio.models.memory import plan_memory

    device = torch.device("cuda")
    total_gib = torch.cuda.get_device_properties(device).total_memory / GIB
    result = {"device": torch.cuda.get_device_name(device), "seq_len": args.seq_len}

    model = _build("xl", device, torch.bfloat16, checkpointing=True)
    model.requires_grad_(False)
    apply_lora(model, r=8, alpha=16, target_modules=("q_proj", "k_proj", "v_proj", "o_proj"))
    peak, secs = _step_peak(model, args.seq_len, device)
    plan = {r.strategy: r for r in plan_memory("xl", total_gib, seq_len=args.seq_len, component="language")}
    result["xl_language_lora"] = {"measured_peak_gib": peak, "planned_gib": plan["lora"].total_gb,
                                  "ratio_measured_over_plan": peak / plan["lora"].total_gb, "step_s": secs,
                                  "fits_48gb_measured": peak < 48 * 1e9 / GIB,
                                  "trainable": trainable_parameters(model)}
    del model
    torch.cuda.empty_cache()

    model = _build("base", device, torch.float32, checkpointing=True)
    peak, secs = _step_peak(model, args.seq_len, device)
    plan = {r.strategy: r for r in plan_memory("base", total_gib, seq_len=args.seq_len, component="language")}
    result["base_language_bf16_ckpt"] = {"measured_peak_gib": peak, "planned_gib": plan["bf16-ckpt"].total_gb,
                                         "ratio_measured_over_plan": peak / plan["bf16-ckpt"].total_gb,
                                         "step_s": secs}
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()

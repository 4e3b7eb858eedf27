"""The model presets: one table of every component's configuration and the trainer's defaults per preset.

Light on purpose (it imports only `astrobio.errors`, never torch): the component `from_name` methods, the
`SystemConfig` (`astrobio.models.system`), the memory planner and the command line's `TrainConfig` all read it.

| preset | use | datacube | graph | spectrum | language | fusion (D) | total |
|---|---|---|---|---|---|---|---|
| tiny | tests (seconds on CPU), demo grid | 0.05M | 0.03M | 0.01M | 0.38M | 0.01M (32) | 0.5M |
| small | the demo on 2 CPU cores, demo grid 8×16×5 | 0.11M | 0.09M | 0.08M | 0.85M | 0.16M (96) | 1.3M |
| base | one GPU, seed grid 32×64×10 | 28M | 26M | 20M | 255M | 14M (512) | 344M |
| xl | the seed's scale, seed grid | 2.48B | 1.20B | 0.15B | 13.1B | 0.42B (2048) | 17.4B |
(meta-device counts; tiny/small LMs use the corpus tokenizer's 2048-token vocabulary)
"""

from __future__ import annotations

from typing import Any

from astrobio.errors import choose

# THE preset table: every component's configuration (fields of DatacubeConfig, GraphVAEConfig,
# SpectrumEncoderConfig, LanguageConfig, FusionConfig), the system's own fields, and the trainer's per-preset
# defaults (TrainConfig fields; --config and CLI flags override them). Component `from_name` methods, the
# memory planner and `astrobio train` all read it, so what is planned is what is trained.
# Not in the table because they are facts stated elsewhere: the LM's `spectral_dim` (= spectrum.dim) and,
# for tiny/small, its vocabulary (the corpus tokenizer's `TokenizerConfig.vocab_size`); base/xl keep the
# Llama 32000-token vocabulary so Llama checkpoints load.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # tests (seconds on CPU), demo grid
    "tiny": {
        "datacube": dict(n_levels=5, patch_size=(4, 4, 4), stem_channels=4, dim=32, depth=1, n_heads=2),
        "graph": dict(hidden_dim=32, latent_dim=16, n_layers=2, n_heads=2, pe_steps=4),
        "spectrum": dict(stem_channels=8, n_down=4, dim=32, depth=1, n_heads=2),
        "language": dict(hidden_size=64, intermediate_size=176, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=256, n_prefix_tokens=2),
        "fusion": dict(dim=32, n_layers=1, n_heads=2, mlp_ratio=2.0),
        "system": dict(dropout=0.0),
        "train": dict(lr=1e-3, batch_size=8, warmup_steps=10, max_steps=200, eval_every=25, log_every=5),
    },
    # the demo on 2 CPU cores, demo grid 8×16×5. Sized by CPU cost per sample: one LM layer over ~110-token
    # observing logs whose auxiliary LM loss sees 128 sampled positions, 2 narrow datacube blocks (stem 4, dim 64),
    # 63 spectrum tokens (n_down 4, stem 16, dim 64), one fusion layer; trained at batch 64. Per sample that is
    # x1.62 cheaper than the 1.80M-parameter batch-16 recipe before it (in-process timing), at the same quality on
    # benchmarks/quality.py: 16k training runs, 3 seeds, macro-F1 0.618 / log-loss 0.666 against 0.618 / 0.669
    # (docs/measurements/quality-16k-recipe-2026-12-03b.json).
    "small": {
        "datacube": dict(n_levels=5, patch_size=(3, 2, 4), stem_channels=4, dim=64, depth=2, n_heads=4),
        "graph": dict(hidden_dim=64, latent_dim=32, n_layers=2, n_heads=4, pe_steps=6),
        "spectrum": dict(stem_channels=16, n_down=4, dim=64, depth=2, n_heads=4),
        "language": dict(hidden_size=128, intermediate_size=344, num_hidden_layers=1, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=512, n_prefix_tokens=4, loss_positions=128),
        "fusion": dict(dim=96, n_layers=1, n_heads=4, mlp_ratio=2.0),
        "system": dict(dropout=0.1),
        # the learning-curve recipe of benchmarks/quality.py (best.pt by validation log-loss). lr 4e-4 at batch 64
        # (2e-4 at batch 16 before); validation every 13 steps (~830 samples, as 50 steps of 16 were); at lr 1e-3
        # the demo's validation peaked early and the test scores swung by ~0.1 macro-F1 between runs
        "train": dict(lr=4e-4, batch_size=64, warmup_steps=20, max_steps=250, eval_every=13, log_every=5,
                      select_on="log_loss"),
    },
    # one GPU, seed grid 32×64×10; the LM (~0.27B) has a TinyLlama-like depth/width ratio
    "base": {
        "datacube": dict(n_levels=10, patch_size=(3, 4, 4), stem_channels=32, dim=512, depth=8, n_heads=8,
                         mlp_ratio=4.0),
        "graph": dict(hidden_dim=512, latent_dim=128, n_layers=8, n_heads=8, mlp_ratio=4.0, pe_steps=16),
        "spectrum": dict(stem_channels=128, n_down=3, dim=512, depth=6, n_heads=8, mlp_ratio=4.0, n_fourier=16),
        "language": dict(vocab_size=32000, hidden_size=1024, intermediate_size=2816, num_hidden_layers=16,
                         num_attention_heads=16, num_key_value_heads=4, max_position_embeddings=2048,
                         n_prefix_tokens=4),
        "fusion": dict(dim=512, n_layers=4, n_heads=8, mlp_ratio=4.0),
        "system": dict(dropout=0.1),
        "train": dict(lr=3e-4, batch_size=16, warmup_steps=200, max_steps=20_000, eval_every=500, log_every=20,
                      loader_workers=4),
    },
    # the seed's scale, seed grid. Datacube ≈ 2.5B and graph ≈ 1.2B parameters (the seed's scales). The LM is
    # the seed's 13.14B: the Llama-2-13B trunk (d=5120, 40 layers, 40 heads of 128, vocab 32000) with GQA
    # (8 KV heads, as in Llama-2-70B) and the MLP widened 13824 → 16384 so the parameters removed from k/v
    # return to the MLP: 13.12B with the prefix projectors (meta-device count). The trainer keeps the seed's
    # recipe: lr 1e-4, micro-batch 1 × 32 accumulation, 8-bit AdamW and activation checkpointing.
    "xl": {
        "datacube": dict(n_levels=10, patch_size=(3, 4, 4), stem_channels=64, dim=2560, depth=31, n_heads=32,
                         mlp_ratio=4.0),
        "graph": dict(hidden_dim=2048, latent_dim=512, n_layers=24, n_heads=16, mlp_ratio=3.875, pe_steps=20),
        "spectrum": dict(stem_channels=256, n_down=3, dim=1024, depth=12, n_heads=16, mlp_ratio=4.0, n_fourier=16),
        "language": dict(vocab_size=32000, hidden_size=5120, intermediate_size=16384, num_hidden_layers=40,
                         num_attention_heads=40, num_key_value_heads=8, max_position_embeddings=4096,
                         n_prefix_tokens=4),
        "fusion": dict(dim=2048, n_layers=8, n_heads=16, mlp_ratio=4.0),
        "system": dict(dropout=0.1),
        "train": dict(lr=1e-4, batch_size=1, grad_accum_steps=32, warmup_steps=500, max_steps=100_000,
                      eval_every=1000, log_every=20, optimizer="adamw8bit", activation_checkpointing=True,
                      loader_workers=4),
    },
}
PRESET_NAMES = tuple(PRESETS)


def preset_entry(name: str, part: str) -> dict[str, Any]:
    """A copy of `PRESETS[name][part]` (part: datacube, graph, spectrum, language, fusion, system, train);
    an unknown preset name is an InputValidationError naming the allowed ones."""
    return dict(choose("preset", name, PRESETS)[part])


def train_defaults(name: str) -> dict[str, Any]:
    """The trainer's defaults for preset `name` (TrainConfig fields)."""
    return preset_entry(name, "train")

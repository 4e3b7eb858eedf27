"""LoRA/QLoRA through peft on our modules: frozen base, exact adapter counts, merge round trips."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from astrobio.errors import InputValidationError
from astrobio.models.language import ConditionedLlama, LanguageConfig, load_pretrained_llama
from astrobio.models.lora import (PREFIX_MODULES, apply_lora, lora_layers, merge_and_unload_lora, merge_lora,
                                  prepare_qlora, trainable_parameters, unmerge_lora)


def _lm() -> ConditionedLlama:
    torch.manual_seed(0)
    return ConditionedLlama(LanguageConfig.from_name("tiny")).eval()


def _batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 1024, (2, 8), generator=g)
    return ids, torch.randn(2, 15, generator=g), torch.randn(2, 32, generator=g)


def _step(model, lr=1e-2):
    ids, num, spec = _batch()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    model(ids, None, labels=ids, numerical_data=num, spectral_data=spec)["loss"].backward()
    opt.step()
    model.eval()


def _attn_lora_count(c: LanguageConfig, r: int) -> int:
    h, kv = c.hidden_size, c.num_key_value_heads * c.head_dim
    return c.num_hidden_layers * r * ((h + h) + 2 * (h + kv) + (h + h))  # r·(in + out) per target


@pytest.mark.parametrize("r", [4, 8])
def test_apply_lora_freezes_base_and_trains_adapters(r):
    m = _lm()
    base = {n: p.detach().clone() for n, p in m.named_parameters()}
    ids, num, spec = _batch()
    before = m(ids, None, numerical_data=num, spectral_data=spec)["logits"]
    apply_lora(m, r=r, alpha=2 * r)
    counts = trainable_parameters(m)
    assert counts["trainable"] == _attn_lora_count(m.config, r)
    assert counts["total"] == sum(v.numel() for v in base.values()) + counts["trainable"]
    # B starts at zero: the adapted model equals the base model
    assert torch.equal(m(ids, None, numerical_data=num, spectral_data=spec)["logits"], before)
    lora_b = {n: p.detach().clone() for n, p in m.named_parameters() if "lora_B" in n}
    _step(m)
    for n, p in m.named_parameters():
        if "lora_" in n:
            assert p.requires_grad
        else:
            assert not p.requires_grad
            assert torch.equal(p, base[n.replace(".base_layer", "")]), n
    assert all(not torch.equal(p, lora_b[n]) for n, p in m.named_parameters() if "lora_B" in n)


def test_modules_to_train_keeps_prefix_projectors_trainable():
    m = apply_lora(_lm(), r=2, alpha=4, modules_to_train=PREFIX_MODULES)
    prefix = sum(p.numel() for n, p in m.named_parameters() if n.startswith(PREFIX_MODULES))
    assert trainable_parameters(m)["trainable"] == _attn_lora_count(m.config, 2) + prefix
    with pytest.raises(InputValidationError, match="modules_to_train"):
        apply_lora(_lm(), modules_to_train=("vision_tower",))


def test_merge_unmerge_and_unload_preserve_outputs():
    m = apply_lora(_lm(), r=4, alpha=8)
    _step(m)
    ids, num, spec = _batch()
    adapted = m(ids, None, numerical_data=num, spectral_data=spec)["logits"]
    q = lora_layers(m)[0]
    w0 = q.get_base_layer().weight.detach().clone()
    merge_lora(m)
    assert not torch.allclose(q.get_base_layer().weight, w0)
    assert torch.allclose(m(ids, None, numerical_data=num, spectral_data=spec)["logits"], adapted, atol=1e-5)
    unmerge_lora(m)
    assert torch.allclose(q.get_base_layer().weight, w0, atol=1e-7)
    merge_and_unload_lora(m)
    assert lora_layers(m) == [] and type(m.model.layers[0].self_attn.q_proj) is nn.Linear
    assert torch.allclose(m(ids, None, numerical_data=num, spectral_data=spec)["logits"], adapted, atol=1e-5)


class _CrossAttention(nn.Module):
    """A fusion-style block with the named projections the fusion model exposes."""

    def __init__(self, d=16):
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (nn.Linear(d, d) for _ in range(4))
        self.norm = nn.LayerNorm(d)

    def forward(self, x, ctx):
        a = torch.softmax(self.q_proj(x) @ self.k_proj(ctx).transpose(-1, -2) / 4.0, -1)
        return self.norm(x + self.o_proj(a @ self.v_proj(ctx)))


def test_lora_on_fusion_style_projections():
    torch.manual_seed(0)
    block = apply_lora(_CrossAttention(), r=2, alpha=4)
    assert trainable_parameters(block)["trainable"] == 4 * 2 * (16 + 16)
    assert not block.norm.weight.requires_grad


def test_rejects_bad_arguments():
    with pytest.raises(InputValidationError, match="r="):
        apply_lora(_lm(), r=0)
    with pytest.raises(InputValidationError, match="target_modules"):
        apply_lora(_lm(), target_modules=("query",))
    with pytest.raises(InputValidationError, match="model"):
        prepare_qlora(_lm())


def test_qlora_on_4bit_checkpoint(tmp_path):
    pytest.importorskip("bitsandbytes")
    transformers = pytest.importorskip("transformers")
    cfg = transformers.LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(cfg).save_pretrained(tmp_path)
    m = prepare_qlora(load_pretrained_llama(tmp_path, "4bit", n_prefix_tokens=1, spectral_dim=8), r=4, alpha=8)
    assert m.config.gradient_checkpointing
    c = m.config
    h, kv, i = c.hidden_size, c.num_key_value_heads * c.head_dim, c.intermediate_size
    lora = c.num_hidden_layers * 4 * ((h + h) + 2 * (h + kv) + (h + h) + 2 * (h + i) + (i + h))
    prefix = sum(p.numel() for n, p in m.named_parameters() if n.startswith(PREFIX_MODULES))
    assert trainable_parameters(m)["trainable"] == lora + prefix
    packed = m.model.layers[0].self_attn.q_proj.get_base_layer().weight
    assert packed.__class__.__name__ == "Params4bit"
    packed0 = packed.detach().clone()
    ids = torch.randint(0, 128, (2, 6), generator=torch.Generator().manual_seed(2))
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-2)
    m.train()
    loss = m(ids, None, labels=ids, spectral_data=torch.ones(2, 8))["loss"]
    loss.backward()
    assert all(p.grad is not None for n, p in m.named_parameters() if "lora_A" in n)
    opt.step()
    assert torch.equal(packed.detach(), packed0)


def test_lora_on_the_real_fusion_block():
    fusion = pytest.importorskip("astrobio.models.fusion")
    torch.manual_seed(0)
    block = fusion.CrossModalFusion(fusion.FusionConfig.from_name("tiny"))
    targets = [m for n, m in block.named_modules() if n.split(".")[-1] in ("q_proj", "k_proj", "v_proj", "o_proj")]
    assert targets and all(isinstance(m, nn.Linear) for m in targets)
    apply_lora(block, r=2, alpha=4)
    assert trainable_parameters(block)["trainable"] == sum(2 * (m.in_features + m.out_features) for m in targets)
    assert len(lora_layers(block)) == len(targets)

"""Conditioned Llama: shapes, RoPE against independent references, attention paths, masking, loss,
conditioning, checkpointing, and loading HF checkpoints (fp32 and bitsandbytes 4-bit/8-bit)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from astrobio.errors import InputValidationError
from astrobio.models.language import (ConditionedLlama, LanguageConfig, RebuiltLLMIntegration, apply_rope,
                                      labels_from_input_ids, load_pretrained_llama, rope_cos_sin)

SEED_LM_PARAMS = 13.14e9  # seed report: "RebuiltLLMIntegration (13.14B params)"


def _model(**overrides) -> ConditionedLlama:
    torch.manual_seed(0)
    return ConditionedLlama(LanguageConfig.from_name("tiny", **overrides)).eval()


def _inputs(b=2, t=9, seed=1):
    g = torch.Generator().manual_seed(seed)
    c = LanguageConfig.from_name("tiny")
    ids = torch.randint(0, c.vocab_size, (b, t), generator=g)
    return ids, torch.randn(b, c.n_numerical, generator=g), torch.randn(b, c.spectral_dim, generator=g)


def test_presets_use_gqa_and_xl_matches_seed_scale():
    for name in ("tiny", "small", "base", "xl"):
        c = LanguageConfig.from_name(name)
        assert c.num_key_value_heads < c.num_attention_heads
        with torch.device("meta"):
            m = ConditionedLlama(c)
        attn = m.model.layers[0].self_attn
        assert attn.k_proj.weight.shape == (c.num_key_value_heads * c.head_dim, c.hidden_size)
        assert attn.q_proj.weight.shape == (c.hidden_size, c.hidden_size)
    c = LanguageConfig.from_name("xl")
    with torch.device("meta"):
        n = sum(p.numel() for p in ConditionedLlama(c).parameters())
    assert abs(n - SEED_LM_PARAMS) / SEED_LM_PARAMS < 0.02
    # exact closed form of the architecture: embeddings + head, 40 blocks, final norm, two prefix MLPs
    h, i, kv = c.hidden_size, c.intermediate_size, c.num_key_value_heads * c.head_dim
    block = 2 * h * h + 2 * h * kv + 3 * h * i + 2 * h
    prefix = (2 * c.n_numerical * h + h + h * 4 * h + 4 * h) + (c.spectral_dim * h + h + h * 4 * h + 4 * h)
    assert n == 2 * c.vocab_size * h + c.num_hidden_layers * block + h + prefix
    assert RebuiltLLMIntegration is ConditionedLlama


def test_config_rejects_bad_shapes():
    with pytest.raises(InputValidationError, match="num_key_value_heads"):
        LanguageConfig(num_attention_heads=4, num_key_value_heads=3)
    with pytest.raises(InputValidationError, match="preset"):
        LanguageConfig.from_name("huge")
    with pytest.raises(InputValidationError, match="attn_implementation"):
        LanguageConfig(attn_implementation="flash")


def test_rope_matches_meta_complex_rotation():
    """Meta's llama `apply_rotary_emb` rotates adjacent pairs as complex numbers; HF-layout weights are
    permuted so pair i is (i, i + hd/2). Both must give the same rotation."""
    torch.manual_seed(0)
    b, nh, length, hd, theta = 2, 3, 7, 16, 10000.0
    x = torch.randn(b, nh, length, hd, dtype=torch.float64)
    pos = torch.arange(length).expand(b, length)
    cos, sin = rope_cos_sin(pos, hd, theta, torch.float64)
    ours = apply_rope(x, cos, sin)
    # Meta reference in interleaved layout: (x[i], x[i+hd/2]) -> complex x[2i] + j x[2i+1]
    inter = torch.stack((x[..., : hd // 2], x[..., hd // 2:]), dim=-1)  # (b, nh, L, hd/2, 2)
    freqs = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    freqs_cis = torch.polar(torch.ones(length, hd // 2, dtype=torch.float64),
                            torch.outer(torch.arange(length, dtype=torch.float64), freqs))
    rotated = torch.view_as_real(torch.view_as_complex(inter) * freqs_cis)  # (b, nh, L, hd/2, 2)
    ref = torch.cat((rotated[..., 0], rotated[..., 1]), dim=-1)
    assert torch.allclose(ours, ref, atol=1e-12)
    # rotation preserves norms and q·k depends only on relative position
    assert torch.allclose(ours.norm(dim=-1), x.norm(dim=-1), atol=1e-12)


def test_rope_matches_hf_transformers():
    modeling = pytest.importorskip("transformers.models.llama.modeling_llama")
    from transformers import LlamaConfig

    hf_cfg = LlamaConfig(hidden_size=64, num_attention_heads=4, max_position_embeddings=64, rope_theta=500000.0)
    torch.manual_seed(0)
    q, k = torch.randn(2, 4, 11, 16), torch.randn(2, 4, 11, 16)
    pos = torch.tensor([list(range(11)), [0, 0, 0] + list(range(8))])
    cos_hf, sin_hf = modeling.LlamaRotaryEmbedding(hf_cfg)(q, pos)
    q_hf, k_hf = modeling.apply_rotary_pos_emb(q, k, cos_hf, sin_hf)
    cos, sin = rope_cos_sin(pos, 16, 500000.0, torch.float32)
    assert torch.allclose(cos, cos_hf, atol=1e-6) and torch.allclose(sin, sin_hf, atol=1e-6)
    assert torch.allclose(apply_rope(q, cos, sin), q_hf, atol=1e-6)
    assert torch.allclose(apply_rope(k, cos, sin), k_hf, atol=1e-6)


def test_sdpa_matches_eager_reference_with_padding():
    m = _model()
    ids, num, spec = _inputs()
    mask = torch.ones_like(ids)
    mask[0, :3] = 0  # left padding
    mask[1, 6:] = 0  # right padding
    out_sdpa = m(ids, mask, numerical_data=num, spectral_data=spec)
    m.config.attn_implementation = "eager"
    out_eager = m(ids, mask, numerical_data=num, spectral_data=spec)
    assert (out_sdpa["logits"] - out_eager["logits"]).abs().max() < 1e-5
    assert (out_sdpa["hidden_states"] - out_eager["hidden_states"]).abs().max() < 1e-5


def test_causal_future_tokens_do_not_change_past():
    m = _model()
    ids, num, spec = _inputs()
    ids2 = ids.clone()
    ids2[:, 6:] = (ids2[:, 6:] + 7) % m.config.vocab_size
    a = m(ids, None, numerical_data=num, spectral_data=spec)["logits"]
    b = m(ids2, None, numerical_data=num, spectral_data=spec)["logits"]
    assert torch.allclose(a[:, :6], b[:, :6], atol=1e-6)
    assert not torch.allclose(a[:, 6:], b[:, 6:], atol=1e-3)


def test_padding_invariance_left_and_right():
    m = _model()
    ids, num, spec = _inputs(b=1, t=6)
    ref = m(ids, None, numerical_data=num, spectral_data=spec)["logits"][0]  # (6, V)
    pad = torch.zeros(1, 3, dtype=torch.long)
    right = m(torch.cat([ids, pad], 1), torch.tensor([[1] * 6 + [0] * 3]),
              numerical_data=num, spectral_data=spec)["logits"][0, :6]
    left = m(torch.cat([pad, ids], 1), torch.tensor([[0] * 3 + [1] * 6]),
             numerical_data=num, spectral_data=spec)["logits"][0, 3:]
    assert torch.allclose(right, ref, atol=1e-5)
    assert torch.allclose(left, ref, atol=1e-5)
    assert torch.isfinite(m(torch.cat([pad, ids], 1), torch.tensor([[0] * 3 + [1] * 6]))["logits"]).all()


def test_loss_is_uniform_entropy_for_zero_head_and_ignores_masked_targets():
    m = _model()
    torch.nn.init.zeros_(m.lm_head.weight)  # logits 0 → CE = ln V exactly
    ids, num, spec = _inputs()
    out = m(ids, None, labels=ids, numerical_data=num, spectral_data=spec)
    assert out["loss"].item() == pytest.approx(math.log(m.config.vocab_size), rel=1e-6)

    m = _model()
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    labels = labels_from_input_ids(ids, mask)
    labels[0, 4] = -100
    out = m(ids, mask, labels=labels)
    logits = out["logits"]
    terms = [torch.nn.functional.cross_entropy(logits[b, t - 1], ids[b, t])
             for b in range(2) for t in range(1, ids.shape[1]) if labels[b, t] != -100]
    assert len(terms) == 8 + 5 - 1
    assert out["loss"].item() == pytest.approx(torch.stack(terms).mean().item(), rel=1e-5)
    # a label at an ignored/padded position can be anything
    labels2 = labels.clone()
    labels2[0, 4], labels2[1, 7] = 5, 9
    assert m(ids, mask, labels=labels2)["loss"].item() == pytest.approx(
        m(ids, mask, labels=torch.where(mask.bool(), labels2, -100))["loss"].item(), rel=1e-6)
    assert m(ids, mask)["loss"] is None


def test_sampled_lm_loss_is_ce_at_sampled_valid_positions_and_exact_when_all_fit():
    ids, num, spec = _inputs(b=2, t=9)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    labels = labels_from_input_ids(ids, mask)
    labels[0, 4] = -100  # 12 valid next-token targets in all
    full = _model()(ids, mask, labels=labels)
    m = _model(loss_positions=12).train()  # every valid target fits: the full loss, without the full head
    out = m(ids, mask, labels=labels)
    assert out["logits"] is None
    assert out["loss"].item() == pytest.approx(full["loss"].item(), rel=1e-5)
    assert _model(loss_positions=100).train()(ids, mask, labels=labels)["loss"].item() == pytest.approx(
        full["loss"].item(), rel=1e-5)

    # fewer positions: the mean CE of 3 distinct valid targets, drawn from the torch RNG
    terms = {(b, t - 1): torch.nn.functional.cross_entropy(full["logits"][b, t - 1], ids[b, t]).item()
             for b in range(2) for t in range(1, ids.shape[1]) if labels[b, t] != -100}
    m = _model(loss_positions=3).train()
    values = set()
    for seed in range(30):
        torch.manual_seed(seed)
        loss = m(ids, mask, labels=labels)["loss"].item()
        torch.manual_seed(seed)
        assert m(ids, mask, labels=labels)["loss"].item() == loss  # reproducible from the seed
        values.add(loss)
    means = torch.tensor([sum(terms[k] for k in c) / 3 for c in itertools.combinations(terms, 3)])
    assert all((means - v).abs().min() < 1e-5 for v in values) and len(values) > 10
    m.eval()  # evaluation: every position, full logits
    assert m(ids, mask, labels=labels)["loss"].item() == pytest.approx(full["loss"].item(), rel=1e-5)
    with pytest.raises(InputValidationError):
        LanguageConfig(loss_positions=-1)


def test_prefix_conditioning_changes_outputs_and_absent_prefix_is_masked():
    m = _model()
    ids, num, spec = _inputs()
    plain = m(ids, None)["logits"]
    cond = m(ids, None, numerical_data=num, spectral_data=spec)["logits"]
    cond2 = m(ids, None, numerical_data=num + 1.0, spectral_data=spec)["logits"]
    assert not torch.allclose(plain, cond, atol=1e-4)
    assert not torch.allclose(cond, cond2, atol=1e-4)
    # all numbers missing and spectrum absent: the prefixes are masked out → same as no conditioning
    none_known = m(ids, None, numerical_data=num, spectral_data=spec,
                   numerical_mask=torch.zeros_like(num, dtype=torch.bool),
                   spectral_mask=torch.zeros(2, dtype=torch.bool))["logits"]
    assert torch.allclose(none_known, plain, atol=1e-5)
    # spectral tokens (B, T, S) are mean-pooled
    tokens = torch.stack([spec, spec * 3.0], dim=1)
    pooled = m(ids, None, spectral_data=tokens)["logits"]
    assert torch.allclose(pooled, m(ids, None, spectral_data=spec * 2.0)["logits"], atol=1e-5)
    with pytest.raises(InputValidationError, match="numerical_data.shape"):
        m(ids, None, numerical_data=num[:, :5])
    with pytest.raises(InputValidationError, match="sequence length"):
        m(torch.zeros(1, 300, dtype=torch.long))


def test_gradient_checkpointing_gives_same_gradients():
    ids, num, spec = _inputs()
    grads = []
    for ckpt in (False, True):
        m = _model(gradient_checkpointing=ckpt).train()
        m(ids, None, labels=ids, numerical_data=num, spectral_data=spec)["loss"].backward()
        grads.append({n: p.grad.clone() for n, p in m.named_parameters()})
    assert grads[0].keys() == grads[1].keys()
    for n in grads[0]:
        assert torch.allclose(grads[0][n], grads[1][n], atol=1e-6), n


def _tiny_hf(tmp_path):
    transformers = pytest.importorskip("transformers")
    cfg = transformers.LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                   rms_norm_eps=1e-6)
    torch.manual_seed(0)
    hf = transformers.LlamaForCausalLM(cfg).eval()
    hf.save_pretrained(tmp_path)
    return hf


def test_load_hf_checkpoint_reproduces_hf_logits(tmp_path):
    hf = _tiny_hf(tmp_path)
    ours = ConditionedLlama.from_hf_pretrained(tmp_path, spectral_dim=8, n_prefix_tokens=1).eval()
    assert ours.config.num_key_value_heads == 2 and ours.config.rms_norm_eps == 1e-6
    ids = torch.randint(0, 128, (2, 12), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = hf(ids).logits
        out = ours(ids, torch.ones_like(ids))["logits"]
        cond = ours(ids, torch.ones_like(ids), spectral_data=torch.ones(2, 8))["logits"]
    assert (out - ref).abs().max() < 1e-5
    assert cond.shape == ref.shape and torch.isfinite(cond).all()
    with pytest.raises(InputValidationError, match="path"):
        load_pretrained_llama(tmp_path / "missing")
    with pytest.raises(InputValidationError, match="quantization"):
        load_pretrained_llama(tmp_path, quantization="3bit")


@pytest.mark.parametrize("quantization", ["4bit", "8bit"])
def test_load_hf_checkpoint_quantized(tmp_path, quantization):
    pytest.importorskip("bitsandbytes")
    import bitsandbytes as bnb
    from transformers import BitsAndBytesConfig, LlamaForCausalLM

    _tiny_hf(tmp_path)
    ours = load_pretrained_llama(tmp_path, quantization=quantization, n_prefix_tokens=1, spectral_dim=8).eval()
    kind = bnb.nn.Linear4bit if quantization == "4bit" else bnb.nn.Linear8bitLt
    assert isinstance(ours.model.layers[0].self_attn.q_proj, kind)
    assert isinstance(ours.model.layers[1].mlp.down_proj, kind)
    qcfg = (BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.float32) if quantization == "4bit"
            else BitsAndBytesConfig(load_in_8bit=True))
    hf_q = LlamaForCausalLM.from_pretrained(tmp_path, quantization_config=qcfg, device_map="cpu",
                                            dtype=torch.float32).eval()
    ids = torch.randint(0, 128, (2, 10), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ref = hf_q(ids).logits
        out = ours(ids, torch.ones_like(ids))["logits"]
        cond = ours(ids, torch.ones_like(ids), numerical_data=torch.zeros(2, 15))["logits"]
    # same quantised weights through the same bitsandbytes kernels
    assert (out - ref).abs().max() < 1e-4
    assert torch.isfinite(cond).all() and ours.numerical_prefix.fc1.weight.dtype == torch.float32

import copy
import dataclasses
import json

import pytest
import torch
from torch_geometric.data import Batch, Data

from astrobio.errors import InputValidationError
from astrobio.models import (RebuiltDatacubeCNN, RebuiltGraphVAE, RebuiltLLMIntegration,
                             RebuiltMultimodalIntegration, UnifiedMultiModalSystem, compute_multimodal_loss)
from astrobio.models.language import LanguageConfig
from astrobio.models.system import SystemConfig

from .conftest import make_batch

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_system(**overrides):
    torch.manual_seed(0)
    return UnifiedMultiModalSystem(SystemConfig.from_name("tiny", **overrides))


def test_seed_aliases():
    from astrobio.models.datacube import ClimateDatacubeModel
    from astrobio.models.fusion import CrossModalFusion
    from astrobio.models.graph import MetabolicGraphVAE
    from astrobio.models.language import ConditionedLlama

    assert RebuiltDatacubeCNN is ClimateDatacubeModel and RebuiltGraphVAE is MetabolicGraphVAE
    assert RebuiltLLMIntegration is ConditionedLlama and RebuiltMultimodalIntegration is CrossModalFusion


def test_output_contract(batch):
    m = tiny_system()
    out = m(batch)
    assert set(out) == {"fused", "logits", "regression", "modality_weights", "embeddings", "datacube", "graph",
                        "language", "spectrum", "spectrum_targets"}
    assert out["spectrum_targets"] is None  # no spectrum head unless its loss weight is > 0
    assert out["logits"].shape == (4, 3) and out["regression"].shape == (4, 7)
    assert torch.allclose(out["modality_weights"].sum(-1), torch.ones(4))
    assert out["modality_weights"][1, 2] < 1e-6 and out["modality_weights"][3, 0] < 1e-6  # missing ones
    assert set(out["embeddings"]) == {"datacube", "graph", "spectrum", "text"}
    assert all(e.shape == (4, 32) for e in out["embeddings"].values())
    assert out["datacube"]["reconstruction"].shape == batch.datacube.shape
    assert {"node_reconstruction", "edge_reconstruction", "mu", "logvar", "graph_embedding", "pos_edge_logits",
            "neg_edge_logits"} <= set(out["graph"])
    assert out["language"]["hidden_states"].shape[:2] == batch.input_ids.shape
    assert out["spectrum"]["features"].shape == (4, 32)


def test_prediction_without_language_loss_gives_the_same_heads(batch):
    m = tiny_system().eval()
    with torch.no_grad():
        full, lean = m(batch), m(batch, with_language_loss=False)
    assert full["language"]["logits"] is not None and full["language"]["loss"] is not None
    assert lean["language"]["logits"] is None and lean["language"]["loss"] is None  # the [B, T, V] head skipped
    for key in ("logits", "regression", "modality_weights"):
        assert torch.equal(full[key], lean[key]), key


def test_loss_components_and_weights(batch):
    cfg = SystemConfig.from_name("tiny")
    out = tiny_system()(batch)
    loss = compute_multimodal_loss(out, batch, cfg.loss)
    for k in ("classification", "language", "graph", "physics", "consistency", "datacube", "regression"):
        assert loss[k].dim() == 0 and torch.isfinite(loss[k]) and loss[k] >= 0
    w = cfg.loss
    expected = (w.classification_weight * loss["classification"] + w.language_weight * loss["language"]
                + w.graph_weight * loss["graph"] + w.physics_weight * loss["physics"]
                + w.consistency_weight * loss["consistency"] + w.datacube_weight * loss["datacube"]
                + w.regression_weight * loss["regression"])
    assert torch.allclose(loss["total"], expected)
    assert (w.classification_weight, w.language_weight, w.graph_weight, w.physics_weight,
            w.consistency_weight) == (1.0, 0.3, 0.2, 0.2, 0.15)


def test_the_spectrum_head_learns_hidden_targets_the_heads_never_read(batch):
    cfg = SystemConfig.from_name("tiny")
    cfg = dataclasses.replace(cfg, loss=dataclasses.replace(cfg.loss, spectrum_head_weight=0.5))
    torch.manual_seed(0)
    m = UnifiedMultiModalSystem(cfg).eval()
    out = m(batch)
    assert out["spectrum_targets"].shape == (4, 7 + 4)  # REGRESSION_KEYS then PRIVILEGED_KEYS
    loss = compute_multimodal_loss(out, batch, cfg.loss)
    base = compute_multimodal_loss({**out, "spectrum_targets": None}, batch, cfg.loss)
    assert "spectrum_head" not in base
    assert torch.allclose(loss["total"], base["total"] + 0.5 * loss["spectrum_head"])
    loss["total"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.spectrum_head.parameters())
    # the hidden targets are targets only: other values change no output of the model
    other = dataclasses.replace(batch, privileged_targets=torch.randn_like(batch.privileged_targets) * 100)
    with torch.no_grad():
        a, b = m(batch), m(other)
    for key in ("logits", "regression", "spectrum_targets"):
        assert torch.equal(a[key], b[key]), key
    # a checkpoint's config rebuilds the head
    assert UnifiedMultiModalSystem(SystemConfig.from_dict(cfg.to_dict())).spectrum_head is not None


def test_gradients_reach_every_parameter():
    b = make_batch(4, seed=3, missing={"spectrum": [1], "text": [1], "graph": [2], "datacube": [3]})
    graphs = b.graph.to_data_list()
    # sample 0: a 0-node graph the mask still calls present, so the learned empty-graph embedding is used
    graphs[0] = Data(x=torch.zeros(0, 64), edge_index=torch.zeros(2, 0, dtype=torch.long))
    b.graph = Batch.from_data_list(graphs)
    m = tiny_system()
    loss = compute_multimodal_loss(m(b), b, m.config.loss)["total"]
    loss.backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None]
    zero = [n for n, p in m.named_parameters() if p.grad is not None and p.grad.abs().sum() == 0]
    assert missing == [] and zero == []


def test_all_modalities_missing_is_finite():
    b = make_batch(3, seed=4, missing={k: [0, 1, 2] for k in ("datacube", "graph", "spectrum", "text")})
    m = tiny_system()
    out = m(b)
    loss = compute_multimodal_loss(out, b, m.config.loss)
    assert all(torch.isfinite(v) for v in loss.values())
    loss["total"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())  # DDP: none unused


def test_gradient_checkpointing_gives_same_gradients(batch):
    grads = []
    for ckpt in (False, True):
        m = tiny_system(gradient_checkpointing=ckpt)
        m.train()
        torch.manual_seed(7)  # negative sampling + reparameterisation noise
        compute_multimodal_loss(m(batch), batch, m.config.loss)["total"].backward()
        grads.append({n: p.grad.clone() for n, p in m.named_parameters()})
    assert grads[0].keys() == grads[1].keys()
    for n in grads[0]:
        assert torch.allclose(grads[0][n], grads[1][n], atol=1e-6, rtol=1e-5), n


def test_system_config_round_trip():
    for name in ("tiny", "small", "base", "xl"):
        cfg = SystemConfig.from_name(name)
        again = SystemConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
        assert again == cfg
    assert SystemConfig.from_name("tiny").language.vocab_size == 2048  # the corpus tokenizer's default
    assert SystemConfig.from_name("small", vocab_size=500).language.vocab_size == 500
    assert SystemConfig.from_name("xl").language.vocab_size == 32000  # Llama checkpoints
    with pytest.raises(InputValidationError):
        SystemConfig.from_name("medium")
    with pytest.raises(InputValidationError):
        SystemConfig.from_dict({**SystemConfig.from_name("tiny").to_dict(), "bogus": 1})
    with pytest.raises(InputValidationError):
        SystemConfig(language=LanguageConfig(spectral_dim=7))


def test_graph_count_must_match_batch(batch):
    bad = copy.copy(batch)
    bad.graph = Batch.from_data_list(batch.graph.to_data_list()[:3])
    with pytest.raises(InputValidationError):
        tiny_system()(bad)


def test_tiny_system_overfits_32_samples():
    b = make_batch(32, seed=1, missing={"spectrum": [1, 5], "text": [2], "graph": [3], "datacube": [4]})
    m = tiny_system()
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    acc = 0.0
    for step in range(200):
        out = m(b)
        loss = compute_multimodal_loss(out, b, m.config.loss)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        acc = (out["logits"].argmax(-1) == b.labels).float().mean().item()
        if acc > 0.95:
            break
    assert acc > 0.95, f"training accuracy {acc:.2f} after {step + 1} steps"

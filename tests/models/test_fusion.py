import pytest
import torch

from astrobio.errors import InputValidationError
from astrobio.models.fusion import MODALITIES, CrossModalFusion, FusionConfig


def setup(B=3, seed=0):
    torch.manual_seed(seed)
    m = CrossModalFusion(FusionConfig.from_name("tiny"))
    feats = {k: torch.randn(B, 32) for k in MODALITIES}
    return m, feats


def test_weights_sum_to_one_and_missing_is_down_weighted():
    m, feats = setup()
    mask = torch.tensor([[True, True, True, True], [True, False, True, False], [False, False, False, False]])
    out = m(feats, mask, torch.randn(3, 4))
    w = out["modality_weights"]
    assert out["fused"].shape == (3, 32) and w.shape == (3, 4)
    assert torch.allclose(w.sum(-1), torch.ones(3))
    assert w[1, 1] < 1e-6 and w[1, 3] < 1e-6
    assert torch.isfinite(out["fused"]).all()


def test_missing_features_do_not_leak():
    m, feats = setup()
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[0, 2] = False
    a = m(feats, mask)["fused"]
    feats["spectrum"] = feats["spectrum"].clone()
    feats["spectrum"][0] = 1e3  # garbage in a missing slot
    b = m(feats, mask)["fused"]
    assert torch.equal(a[0], b[0])
    assert not torch.allclose(a[0], m(feats)["fused"][0])  # when present, it matters


def test_missing_token_gets_gradient_and_physics_token_matters():
    m, feats = setup()
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[:, 0] = False
    out = m(feats, mask, torch.zeros(3, 4))
    out["fused"].sum().backward()
    assert m.missing_token.grad[0].abs().sum() > 0
    assert not torch.allclose(out["fused"], m(feats, mask, torch.ones(3, 4))["fused"])


def test_attention_projections_are_named_for_lora():
    m, _ = setup()
    names = {n.rsplit(".", 1)[-1] for n, _ in m.named_modules()}
    assert {"q_proj", "k_proj", "v_proj", "o_proj"} <= names


def test_bad_input_raises():
    m, feats = setup()
    with pytest.raises(InputValidationError):
        m({k: v for k, v in feats.items() if k != "text"})
    with pytest.raises(InputValidationError):
        m({k: torch.randn(3, 8) for k in MODALITIES})
    with pytest.raises(InputValidationError):
        FusionConfig.from_name("giant")


def test_unknown_physics_numbers_are_never_read_and_known_ones_matter():
    m, feats = setup()
    m.eval()
    phys = torch.randn(3, 4)
    known = torch.tensor([[True, False, True, True]] * 3)
    a = m(feats, None, phys, known)["fused"]
    garbage = phys.clone()
    garbage[:, 1] = 1e6  # an unknown value
    assert torch.equal(a, m(feats, None, garbage, known)["fused"])
    moved = phys.clone()
    moved[:, 0] += 1.0  # a known value
    assert not torch.allclose(a, m(feats, None, moved, known)["fused"])
    with pytest.raises(InputValidationError, match="physics_features.shape"):
        m(feats, None, torch.randn(3, 5))

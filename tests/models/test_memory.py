"""Parameter counts, activation accounting and the memory planner, checked against measurements.

Measured peak (acceptance): one fp32 training step (forward, backward, AdamW) of the tiny LM on CPU,
profiled with `torch.profiler.profile(profile_memory=True, record_shapes=True, with_stack=True)`;
`export_memory_timeline(..., device="cpu")` gives the bytes alive per category (parameters, optimizer
state, gradients, activations, autograd detail, temporaries) after every allocation; its maximum over
the step is the measured peak. The second step is profiled, so optimizer states already exist.
"""

from __future__ import annotations

import json

import pytest
import torch

from astrobio.errors import InputValidationError
from astrobio.models.language import ConditionedLlama, LanguageConfig
from astrobio.models.memory import (ADAM8_STATE_BYTES, GIB, NF4_BYTES, STRATEGIES, count_module_parameters,
                                    language_activation_bytes, language_parameter_count, plan_memory,
                                    trace_activation_bytes, verdict)


def _lm_step_inputs(c: LanguageConfig, b: int, t: int, device: str = "cpu"):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, c.vocab_size, (b, t), generator=g)
    num, spec = torch.randn(b, c.n_numerical, generator=g), torch.randn(b, c.spectral_dim, generator=g)
    return ids.to(device), num.to(device), spec.to(device)


def test_language_counts_are_exact_and_xl_is_seed_scale():
    c = LanguageConfig.from_name("tiny")
    torch.manual_seed(0)
    # the tiny LM that `train --preset tiny` builds: 244,288 + the 2048-token corpus vocabulary's embedding and
    # head rows beyond 1024 (2 × 1024 × 64)
    assert language_parameter_count(c) == count_module_parameters(ConditionedLlama(c)) == 244288 + 2 * 1024 * 64
    xl = language_parameter_count(LanguageConfig.from_name("xl"))
    assert abs(xl - 13.14e9) / 13.14e9 < 0.02


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("loss_positions", [0, 40])  # 40 of 64 text positions reach the head
def test_activation_formula_matches_saved_tensors_on_cpu(dtype, loss_positions):
    c = LanguageConfig.from_name("tiny", loss_positions=loss_positions)
    torch.manual_seed(0)
    m = ConditionedLlama(c).to(dtype).train()
    ids, num, spec = _lm_step_inputs(c, 2, 32)
    _, measured = trace_activation_bytes(
        lambda: m(ids, None, labels=ids, numerical_data=num, spectral_data=spec), list(m.parameters()))
    est = language_activation_bytes(c, 2, 32, 4 if dtype == torch.float32 else 2)
    assert abs(est - measured) / measured < 0.03


def test_activation_formula_matches_meta_trace_at_base_scale():
    """At scale the formula equals the meta-device trace (fused attention) to the byte, up to scalars."""
    c = LanguageConfig.from_name("base")
    with torch.device("meta"):
        m = ConditionedLlama(c).to(torch.bfloat16).train()
    ids, num, spec = _lm_step_inputs(c, 1, 256, "meta")
    _, traced = trace_activation_bytes(
        lambda: m(ids, None, labels=ids, numerical_data=num, spectral_data=spec), list(m.parameters()))
    assert abs(language_activation_bytes(c, 1, 256, 2) - traced) <= 64
    # checkpointing keeps one e·h vector per layer and position, plus one layer recomputed in backward
    full = language_activation_bytes(c, 1, 256, 2)
    ckpt = language_activation_bytes(c, 1, 256, 2, checkpointing=True)
    positions, h = 256 + c.n_prefix_total, c.hidden_size
    layer = positions * (2 * (4 * h + 4 + 4 * h) + 10 * h + 4 * c.num_attention_heads + 8 * c.intermediate_size)
    assert full - ckpt == (c.num_hidden_layers - 1) * layer - c.num_hidden_layers * positions * 2 * h


@pytest.mark.filterwarnings("ignore::FutureWarning")  # export_memory_timeline: still the CPU-capable API
def test_plan_matches_profiled_peak_of_a_tiny_training_step(tmp_path):
    c = LanguageConfig.from_name("tiny")
    b, t = 4, 96
    torch.manual_seed(0)
    m = ConditionedLlama(c).train()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    ids, num, spec = _lm_step_inputs(c, b, t)

    def step():
        m(ids, None, labels=ids, numerical_data=num, spectral_data=spec)["loss"].backward()
        opt.step()
        opt.zero_grad(set_to_none=False)

    step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True,
                                record_shapes=True, with_stack=True) as prof:
        step()
    path = tmp_path / "timeline.json"
    prof.export_memory_timeline(str(path), device="cpu")
    _, sizes = json.loads(path.read_text())
    measured = max(sum(row) for row in sizes)
    row = plan_memory("tiny", 1.0, micro_batch_size=b, seq_len=t, component="language", strategies=("fp32",))[0]
    n = language_parameter_count(c)
    assert row.weights_gb * GIB == 4 * n and row.gradients_gb * GIB == 4 * n and row.optimizer_gb * GIB == 8 * n
    estimate = row.total_gb * GIB
    assert abs(estimate - measured) / measured < 0.25, (estimate, measured)


def test_xl_language_verdicts_are_honest():
    """The seed's claim "13.14B fits 48 GB": full fine-tuning does not, even with 8-bit AdamW or optimizer
    offload; LoRA and QLoRA do."""
    rows = {r.strategy: r for r in plan_memory("xl", 48.0, seq_len=512, component="language")}
    n = language_parameter_count(LanguageConfig.from_name("xl"))
    assert not any(rows[s].fits for s in ("fp32", "bf16", "bf16-ckpt", "bf16-ckpt-adam8bit", "bf16-ckpt-offload"))
    assert rows["qlora"].fits and rows["lora"].fits
    assert rows["bf16"].weights_gb * GIB == 2 * n and rows["bf16"].optimizer_gb * GIB == 12 * n
    assert rows["bf16-ckpt-adam8bit"].optimizer_gb * GIB == pytest.approx((4 + ADAM8_STATE_BYTES) * n)
    assert rows["bf16-ckpt-offload"].optimizer_gb == 0 and rows["bf16-ckpt-offload"].cpu_gb * GIB == 14 * n
    assert rows["qlora"].weights_gb < rows["lora"].weights_gb / 2.5
    assert rows["bf16-ckpt"].activations_gb < rows["bf16"].activations_gb < rows["fp32"].activations_gb
    # 8 GPUs sharding everything (ZeRO-3) bring bf16 + checkpointing + 8-bit AdamW under 48 GiB
    sharded = plan_memory("xl", 48.0, seq_len=512, component="language", strategies=("bf16-ckpt-adam8bit",),
                          num_gpus=8)[0]
    assert sharded.fits and sharded.weights_gb == pytest.approx(rows["bf16-ckpt-adam8bit"].weights_gb / 8)
    assert verdict(list(rows.values()), "xl", 48.0).startswith("xl fits 48 GiB with 'lora'")
    assert NF4_BYTES == pytest.approx(0.5 + 0.127 / 8)


def test_plan_rejects_bad_input():
    with pytest.raises(InputValidationError, match="gpu_memory_gb"):
        plan_memory("tiny", 0, component="language")
    with pytest.raises(InputValidationError, match="strategy"):
        plan_memory("tiny", 8, component="language", strategies=("zero-infinity",))
    with pytest.raises(InputValidationError, match="seq_len"):
        plan_memory("tiny", 8, component="language", seq_len=10_000)
    assert set(STRATEGIES) >= {"fp32", "bf16", "bf16-ckpt", "bf16-ckpt-adam8bit", "bf16-ckpt-offload", "lora",
                               "qlora"}


def test_system_counts_sum_to_total():
    pytest.importorskip("astrobio.models.system")
    from astrobio.models.memory import COMPONENTS, component_activation_bytes, count_parameters
    from astrobio.models.system import SystemConfig, UnifiedMultiModalSystem

    counts = count_parameters("tiny")
    assert set(counts) == {"datacube", "graph", "spectrum", "language", "fusion", "total"}
    assert sum(v for k, v in counts.items() if k != "total") == counts["total"]
    torch.manual_seed(0)
    real = UnifiedMultiModalSystem(SystemConfig.from_name("tiny"))
    assert counts["total"] == count_module_parameters(real)
    assert counts["language"] == count_module_parameters(real.language)
    assert counts["datacube"] == count_module_parameters(real.datacube)
    acts = component_activation_bytes("tiny", 1, 16, 4, checkpointing=False, graph_nodes=12, graph_edges=24)
    assert tuple(acts) == COMPONENTS and all(v > 0 for v in acts.values())
    # bf16 activations are smaller; the LM's shrink further with checkpointing
    acts_ckpt = component_activation_bytes("tiny", 1, 16, 2, checkpointing=True, graph_nodes=12, graph_edges=24)
    assert all(acts_ckpt[k] < acts[k] for k in COMPONENTS)


def test_memory_cli_json():
    from typer.testing import CliRunner

    from astrobio.cli import app

    result = CliRunner().invoke(app, ["memory", "--preset", "tiny", "--gpu-memory-gb", "1", "--component",
                                      "language", "--seq-len", "64", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output[result.output.index("{"):])
    assert payload["parameters"] == {"language": 244288 + 2 * 1024 * 64}  # the LM train builds (2048 tokens)
    assert [r["strategy"] for r in payload["rows"]] == list(STRATEGIES)
    assert all(r["fits"] for r in payload["rows"]) and "fits 1 GiB" in payload["verdict"]


def test_plan_matches_accounted_peak_of_a_tiny_system_step():
    """The whole tiny system (four encoders, fusion, heads, multi-modal loss), one fp32 AdamW step, by
    exact accounting: parameters + gradients + AdamW states after the step, plus the activations the real
    CPU forward and loss save for backward (saved-tensor hooks, deduplicated by storage)."""
    pytest.importorskip("astrobio.models.system")
    from astrobio.models.losses import compute_multimodal_loss
    from astrobio.models.system import SystemConfig, UnifiedMultiModalSystem
    from tests.models.conftest import make_batch

    b, t = 2, 64
    batch = make_batch(b, seed=0, n_text=t)
    cfg = SystemConfig.from_name("tiny")
    torch.manual_seed(0)
    model = UnifiedMultiModalSystem(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    params = list(model.parameters())
    loss, activations = trace_activation_bytes(
        lambda: compute_multimodal_loss(model(batch), batch, cfg.loss)["total"], params)
    loss.backward()
    opt.step()
    tensor_bytes = lambda ts: sum(x.numel() * x.element_size() for x in ts)  # noqa: E731
    states = [v for st in opt.state.values() for v in st.values() if isinstance(v, torch.Tensor)]
    measured = tensor_bytes(params) + tensor_bytes([p.grad for p in params]) + tensor_bytes(states) + activations
    row = plan_memory("tiny", 1.0, micro_batch_size=b, seq_len=t, strategies=("fp32",),
                      graph_nodes=batch.graph.num_nodes // b, graph_edges=batch.graph.num_edges // b)[0]
    estimate = row.total_gb * GIB
    assert abs(estimate - measured) / measured < 0.25, (estimate, measured)


def test_memory_plans_what_train_builds():
    """`astrobio memory --preset P` counts and plans the system `astrobio train --preset P` builds."""
    from typer.testing import CliRunner

    from astrobio.cli import app
    from astrobio.models.memory import default_text_tokens, plan_training
    from astrobio.models.system import SystemConfig
    from astrobio.training.config import TrainConfig

    for preset in ("tiny", "small"):
        trained = SystemConfig.from_name(preset)  # what build_system_run builds for --preset
        with torch.device("meta"):
            planned = _meta_system_counts(preset)
        assert planned == count_module_parameters_meta(trained)
    result = CliRunner().invoke(app, ["memory", "--preset", "small", "--gpu-memory-gb", "24", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output[result.output.index("{"):])
    cfg = TrainConfig.for_preset("small")
    gpu = plan_training(cfg, "cuda", default_text_tokens(), 24.0)
    row = next(r for r in payload["rows"] if r["strategy"] == gpu.strategy)  # 'bf16', a row of the table
    assert row["total_gb"] == pytest.approx(gpu.total_gb)
    assert f"runs '{gpu.strategy}' on a GPU" in payload["verdict"]


def _meta_system_counts(preset):
    from astrobio.models.memory import count_parameters

    return count_parameters(preset)["total"]


def count_module_parameters_meta(system_config):
    from astrobio.models.system import UnifiedMultiModalSystem

    with torch.device("meta"):
        return count_module_parameters(UnifiedMultiModalSystem(system_config))

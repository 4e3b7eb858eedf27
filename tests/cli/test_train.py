"""`astrobio train STORE --out RUN` end to end on a tiny simulated store with the real `tiny` system."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from typer.testing import CliRunner

from astrobio.cli import app
from astrobio.training import TrainConfig, load_checkpoint
from astrobio.training.setup import prepare_finetuning


def _train(store, out, *extra: str):
    args = ["train", str(store), "--out", str(out), "--preset", "tiny", "--max-steps", "3",
            "--batch-size", "2", "--lr", "1e-3", "--warmup-steps", "1", "--eval-every", "2", "--log-every", "1",
            "--deterministic", *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def _losses(run):
    rows = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    return {r["step"]: {k: v for k, v in r.items() if k.startswith("train/")} for r in rows if r["kind"] == "train"}


def test_train_cli_writes_the_run_and_resumes_exactly(tiny_store, tmp_path):
    full = tmp_path / "full"
    _train(tiny_store, full)
    for name in ("config.yaml", "history.jsonl", "run_info.json", "train_summary.json",
                 "checkpoints/best.pt", "checkpoints/last.pt"):
        assert (full / name).is_file(), name
    assert any((full / "tensorboard").iterdir())
    summary = json.loads((full / "train_summary.json").read_text())
    assert summary["steps"] == 3 and 0.0 <= summary["best_val_macro_f1"] <= 1.0 and summary["samples_per_s"] > 0
    config = yaml.safe_load((full / "config.yaml").read_text())
    assert config["train"]["lr"] == 1e-3 and config["system"]["num_classes"] == 3
    info = json.loads((full / "run_info.json").read_text())
    assert info["environment"]["torch"] == torch.__version__ and len(info["data_fingerprint"]) == 64
    ckpt = load_checkpoint(full / "checkpoints" / "last.pt")
    assert ckpt["step"] == 3 and ckpt["data_fingerprint"] == info["data_fingerprint"]
    assert set(ckpt["data_position"]) >= {"epoch", "batch_index", "sampler_seed"}
    losses = _losses(full)
    assert {"train/loss", "train/loss_classification", "train/loss_graph", "train/loss_language"} <= set(losses[1])

    # stopped by the time budget after step 1, then resumed: identical per-step losses
    cut = tmp_path / "cut"
    _train(tiny_store, cut, "--max-minutes", "1e-9")
    assert load_checkpoint(cut / "checkpoints" / "last.pt")["step"] == 1
    _train(tiny_store, cut, "--resume", "auto", "--max-minutes", "0")
    assert _losses(cut) == losses


def _tiny_llama_dir(tmp_path, vocab_size: int, hidden: int = 48):
    """A tiny HF Llama checkpoint written by the test itself (no download)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    path = tmp_path / "tiny-llama"
    LlamaForCausalLM(LlamaConfig(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden,
                                 num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
                     ).save_pretrained(path)
    return path


def test_train_prints_the_memory_plan_it_runs(tiny_store, tmp_path, caplog):
    from astrobio.models.memory import plan_training

    with caplog.at_level("INFO", logger="astrobio.training"):
        _train(tiny_store, tmp_path / "run")
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("plan:"))
    cfg = TrainConfig.for_preset("tiny", batch_size=2)
    row = plan_training(cfg, "cpu", 128, 1.0)
    assert f"strategy '{row.strategy}'" in line and "micro-batch 2, 128 text tokens" in line
    assert f"= {row.total_gb:.3f} GiB" in line


def test_lora_from_the_cli_trains_only_adapters_and_evaluation_rebuilds_it(tiny_store, tmp_path):
    from astrobio.models import SystemConfig, UnifiedMultiModalSystem
    from astrobio.models.memory import STRATEGIES, training_strategy

    run = tmp_path / "lora"
    _train(tiny_store, run, "--lora-rank", "4")
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    first = load_checkpoint(run / "checkpoints" / "best.pt")["model"]
    adapters = [k for k in state["model"] if "lora_" in k]
    assert any(k.startswith("language.") for k in adapters) and any(k.startswith("fusion.") for k in adapters)
    cfg = TrainConfig.from_dict(state["config"]["train"])
    assert cfg.lora_rank == 4
    # the frozen bases did not move; a fully trained encoder did
    torch.manual_seed(cfg.seed)
    fresh = prepare_finetuning(UnifiedMultiModalSystem(SystemConfig.from_dict(state["config"]["system"])), cfg)
    init = fresh.state_dict()
    base = "language.model.layers.0.self_attn.q_proj.base_layer.weight"
    assert torch.equal(state["model"][base], init[base]) and torch.equal(first[base], init[base])
    head = "classifier.4.weight"  # the heads and encoders train fully
    assert not torch.equal(state["model"][head], init[head])
    fresh.load_state_dict(state["model"])  # the same module tree
    from astrobio.evaluation.inference import load_trained

    loaded = load_trained(run)  # evaluation rebuilds the adapters and loads the best weights
    assert torch.equal(loaded.model.state_dict()[adapters[0]], first[adapters[0]])
    # the planner's row for these flags is the lora row adjusted to CPU fp32, with r = 4
    s = training_strategy(cfg, "cpu")
    assert s.lm_mode == "lora" and s.lora_r == 4 and s.lora_targets == STRATEGIES["lora"].lora_targets


def test_init_language_from_a_local_hf_llama(tiny_store, tmp_path):
    from astrobio.errors import InputValidationError
    from astrobio.models import SystemConfig, UnifiedMultiModalSystem

    path = _tiny_llama_dir(tmp_path, vocab_size=2048)
    run = tmp_path / "hf"
    _train(tiny_store, run, "--init-language-from", str(path), "--lora-rank", "2", "--lora-targets", "q_proj,v_proj")
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["config"]["system"]["language"]["hidden_size"] == 48  # the checkpoint's trunk, not tiny's 64
    from transformers import LlamaForCausalLM

    hf = LlamaForCausalLM.from_pretrained(path)
    key = "language.model.layers.1.mlp.down_proj.weight"  # not adapted, frozen: still the checkpoint's
    assert torch.equal(state["model"][key], hf.model.layers[1].mlp.down_proj.weight)
    assert not any("k_proj.lora_" in k for k in state["model"])
    # a checkpoint whose vocabulary cannot hold the corpus tokenizer's ids is refused, naming the field
    small = _tiny_llama_dir(tmp_path / "v", vocab_size=100)
    cfg = TrainConfig.for_preset("tiny", init_language_from=str(small))
    with pytest.raises(InputValidationError, match="vocab_size"):
        prepare_finetuning(UnifiedMultiModalSystem(SystemConfig.from_name("tiny")), cfg)


def test_quantised_language_needs_a_checkpoint_and_lora(tiny_store, tmp_path):
    result = CliRunner().invoke(app, ["train", str(tiny_store), "--out", str(tmp_path / "q"),
                                      "--preset", "tiny", "--language-quantization", "4bit"])
    assert result.exit_code == 2 and "language_quantization" in result.output


def test_qlora_from_the_cli_on_a_4bit_checkpoint(tiny_store, tmp_path):
    pytest.importorskip("bitsandbytes")
    from astrobio.models.memory import training_strategy

    path = _tiny_llama_dir(tmp_path, vocab_size=2048, hidden=64)  # bitsandbytes' CPU 4-bit kernel: blocks of 32
    run = tmp_path / "qlora"
    _train(tiny_store, run, "--init-language-from", str(path), "--language-quantization", "4bit", "--lora-rank", "2")
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    cfg = TrainConfig.from_dict(state["config"]["train"])
    assert any("down_proj.lora_A" in k for k in state["model"])  # QLoRA: every LM linear layer adapted
    assert training_strategy(cfg, "cpu").lm_mode == "qlora"

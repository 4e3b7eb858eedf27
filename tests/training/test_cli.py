"""`astrobio train` end to end on a tiny simulated store with the real `tiny` system."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from typer.testing import CliRunner

from astrobio.cli import app
from astrobio.errors import TrainingInstabilityError
from astrobio.training import TrainConfig, Trainer, load_checkpoint
from astrobio.training.cli import build_system_run
from astrobio.training.distributed import DistContext


def _train(store, out, *extra: str):
    args = ["train", "--data", str(store), "--out", str(out), "--preset", "tiny", "--max-steps", "3",
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


def test_real_loss_nan_names_the_component(tiny_store, tmp_path):
    cfg = TrainConfig(preset="tiny", lr=1e-3, warmup_steps=1, max_steps=5, batch_size=2, tracking="none")
    run = build_system_run(cfg, tiny_store, DistContext())
    calls = {"n": 0}

    def nan_graph_at_step_2(outputs, batch):  # test-only wrapper around the real loss
        losses = run["loss_fn"](outputs, batch)
        calls["n"] += 1
        if calls["n"] == 2:
            losses["graph"] = losses["graph"] + float("nan")
            losses["total"] = losses["total"] + losses["graph"]
        return losses

    trainer = Trainer(run["model"], nan_graph_at_step_2, run["train"], run["val"], cfg, tmp_path,
                      data_fingerprint=run["fingerprint"])
    with pytest.raises(TrainingInstabilityError, match="non-finite loss at step 2 in component 'graph'") as err:
        trainer.fit()
    debug = torch.load(tmp_path / "checkpoints" / "debug-step2.pt", weights_only=False)
    assert len(debug["run_ids"]) == 2 and set(debug["run_ids"]) <= set(run["train"].run_ids)
    assert debug["run_ids"][0] in str(err.value)


def test_train_cli_bad_input_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r"),
                                      "--max-steps", "2"])
    assert result.exit_code == 2 and "InputValidationError" in result.output and "data" in result.output
    result = CliRunner().invoke(app, ["train", "--data", str(tmp_path), "--out", str(tmp_path / "r"),
                                      "--optimizer", "sgd"])
    assert result.exit_code == 2 and "optimizer" in result.output


def test_activation_checkpointing_flag_sets_the_model_switch(tiny_store):
    run = build_system_run(TrainConfig(preset="tiny", activation_checkpointing=True), tiny_store, DistContext())
    assert run["system_config"].gradient_checkpointing and run["model"].config.language.gradient_checkpointing
    assert all(m.gradient_checkpointing for m in run["model"].modules() if hasattr(m, "gradient_checkpointing"))

"""TrainConfig: validation, YAML round trip, CLI-style overrides; tracker selection."""

from __future__ import annotations

import pytest
import yaml

from astrobio.errors import InputValidationError
from astrobio.training import TrainConfig
from astrobio.training.tracking import cpu_model, make_tracker
from astrobio.training.trainer import resolve_precision


def test_defaults_follow_the_seed():
    c = TrainConfig()
    assert (c.lr, c.weight_decay, c.betas, c.grad_clip, c.grad_norm_warn) == (1e-4, 0.01, (0.9, 0.999), 1.0, 10.0)


def test_yaml_round_trip_and_overrides(tmp_path):
    c = TrainConfig(preset="small", lr=3e-3, betas=(0.9, 0.95), optimizer="adamw8bit", max_steps=50)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(c.to_dict()))
    assert TrainConfig.from_yaml(path) == c
    # a run's config.yaml nests the fields under "train"
    path.write_text(yaml.safe_dump({"train": c.to_dict(), "system": {"d_model": 64}}))
    assert TrainConfig.from_yaml(path) == c
    o = c.replace(lr=1e-2, max_steps=None)  # None = flag not given
    assert o.lr == 1e-2 and o.max_steps == 50 and c.lr == 3e-3


@pytest.mark.parametrize("field,value", [
    ("lr", 0.0), ("lr", float("nan")), ("optimizer", "sgd"), ("precision", "fp8"), ("tracking", "comet"),
    ("batch_size", 0), ("grad_accum_steps", 1.5), ("betas", (0.9, 1.0)), ("warmup_steps", -1),
    ("patience", -1), ("grad_clip", -1.0), ("min_lr_ratio", 2.0), ("select_on", "accuracy")])
def test_invalid_values_name_the_field(field, value):
    with pytest.raises(InputValidationError, match=field):
        TrainConfig(**{field: value})


def test_unknown_yaml_key_is_rejected(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 0.001\nlearning_rate: 0.1\n")
    with pytest.raises(InputValidationError, match="learning_rate"):
        TrainConfig.from_yaml(path)
    with pytest.raises(InputValidationError):
        TrainConfig.from_yaml(tmp_path / "missing.yaml")


def test_precision_resolution_on_cpu():
    import torch

    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == (None, False)  # fp32 on CPU
    assert resolve_precision("bf16", cpu) == (torch.bfloat16, False)
    assert resolve_precision("fp16", cpu) == (torch.float16, True)  # GradScaler only for fp16


def test_missing_tracker_package_is_a_clear_error(tmp_path):
    import importlib.util

    if importlib.util.find_spec("wandb") is None:
        with pytest.raises(InputValidationError, match="pip install wandb"):
            make_tracker("wandb", tmp_path)
    tracker = make_tracker("tensorboard", tmp_path)
    tracker.log_metrics({"train/loss": 1.0}, 1)
    tracker.close()
    assert any((tmp_path / "tensorboard").iterdir())


def test_preset_defaults_then_overrides(tmp_path):
    from astrobio.training.setup import resolve_config

    xl = TrainConfig.for_preset("xl")
    assert (xl.lr, xl.batch_size, xl.grad_accum_steps, xl.optimizer, xl.activation_checkpointing) == \
        (1e-4, 1, 32, "adamw8bit", True)  # the seed's recipe
    with pytest.raises(InputValidationError, match="preset"):
        TrainConfig.for_preset("huge")
    path = tmp_path / "c.yaml"
    path.write_text("preset: small\nlr: 0.002\nbatch_size: 4\n")
    # preset defaults ← YAML ← flags (None = flag not given)
    c = resolve_config(path, None, tmp_path / "run", {"batch_size": 2, "lr": None, "seed": 7})
    assert (c.preset, c.lr, c.batch_size, c.seed, c.warmup_steps) == ("small", 0.002, 2, 7, 20)


def test_cpu_model_is_read_from_cpuinfo_or_none(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9B14\nflags\t: avx2\n\n"
                   "processor\t: 1\nmodel name\t: AMD EPYC 9B14\n")
    assert cpu_model(x86) == "AMD EPYC 9B14"
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nBogoMIPS\t: 50.00\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n")
    assert cpu_model(arm) == "Raspberry Pi 4 Model B Rev 1.4"
    (tmp_path / "empty").write_text("processor\t: 0\nmodel name\t:\n")
    assert cpu_model(tmp_path / "empty") is None and cpu_model(tmp_path / "missing") is None

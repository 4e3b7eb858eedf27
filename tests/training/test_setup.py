"""What `astrobio train` builds (astrobio.training.setup): the real tiny system on a tiny simulated store."""

from __future__ import annotations

import pytest
import torch

from astrobio.errors import InputValidationError, TrainingInstabilityError
from astrobio.training import TrainConfig, Trainer
from astrobio.training.distributed import DistContext
from astrobio.training.setup import build_system_run


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


def test_activation_checkpointing_flag_sets_the_model_switch(tiny_store):
    run = build_system_run(TrainConfig(preset="tiny", activation_checkpointing=True), tiny_store, DistContext())
    assert run["system_config"].gradient_checkpointing and run["model"].config.language.gradient_checkpointing
    assert all(m.gradient_checkpointing for m in run["model"].modules() if hasattr(m, "gradient_checkpointing"))


def test_spectrum_head_weight_builds_the_head_trains_it_and_is_planned(tiny_store):
    from astrobio.models.memory import plan_training

    cfg = TrainConfig(preset="tiny", batch_size=2, tracking="none", spectrum_head_weight=0.5)
    run = build_system_run(cfg, tiny_store, DistContext())
    assert run["system_config"].loss.spectrum_head_weight == 0.5 and run["model"].spectrum_head is not None
    batch = run["train"].collate_fn()([run["train"][0], run["train"][1]])
    assert batch.privileged_targets.shape == (2, 4)
    losses = run["loss_fn"](run["model"](batch), batch)
    assert "spectrum_head" in losses and torch.isfinite(losses["spectrum_head"])
    # the plan of this run counts the head's weights: more than the same run without it
    head = sum(p.numel() for p in run["model"].spectrum_head.parameters())
    plain = TrainConfig(preset="tiny", batch_size=2, tracking="none")
    assert build_system_run(plain, tiny_store, DistContext())["model"].spectrum_head is None
    with_head, without = plan_training(cfg, "cpu", 128, 1.0), plan_training(plain, "cpu", 128, 1.0)
    assert with_head.weights_gb - without.weights_gb == pytest.approx(head * 4 / 2**30, rel=1e-6)  # fp32
    with pytest.raises(InputValidationError, match="spectrum_head_weight"):
        TrainConfig(spectrum_head_weight=-1.0)

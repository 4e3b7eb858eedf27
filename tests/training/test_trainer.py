"""Trainer behaviour on a toy model: schedule, exact resume, NaN guards, early stopping, 8-bit AdamW."""

from __future__ import annotations

import json
import math
import os
import signal

import pytest
import torch
from trainer_toys import ToyDataset, ToyModel, toy_loader, toy_loss

from astrobio.errors import InputValidationError, TrainingInstabilityError
from astrobio.io import source_sha256
from astrobio.training import TrainConfig, Trainer, classification_metrics, cosine_lr_factor, load_checkpoint
from astrobio.training.trainer import selection_score
from astrobio.training.trainer import build_optimizer, build_scheduler, memory_stats


def make_trainer(out, cfg: TrainConfig, model=None, loss_fn=toy_loss, n_train=48, n_val=16) -> Trainer:
    torch.manual_seed(cfg.seed)
    model = model or ToyModel()
    return Trainer(model, loss_fn, ToyDataset(n_train, seed=1), ToyDataset(n_val, seed=2), cfg, out,
                   make_loader=toy_loader, data_fingerprint="toy")


def train_losses(run_dir) -> dict[int, dict[str, float]]:
    rows = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    return {r["step"]: {k: v for k, v in r.items() if k.startswith("train/")} for r in rows if r["kind"] == "train"}


BASE = dict(lr=3e-2, warmup_steps=2, batch_size=8, log_every=1, eval_every=4, tracking="none", deterministic=True)


def test_cosine_schedule_warmup_midpoint_end():
    # warm-up 10, decay over 100 more steps to 0.1·lr
    f = lambda s: cosine_lr_factor(s, warmup_steps=10, max_steps=110, min_lr_ratio=0.1)  # noqa: E731
    assert f(0) == pytest.approx(0.1) and f(4) == pytest.approx(0.5)
    assert f(9) == pytest.approx(1.0) and f(10) == pytest.approx(1.0)  # warm-up end = peak
    assert f(60) == pytest.approx(0.55)  # midpoint: 0.1 + 0.9·0.5
    assert f(110) == pytest.approx(0.1) and f(500) == pytest.approx(0.1)  # end, and clamped after it
    # the LambdaLR built from a config applies the same factors to the optimizer
    cfg = TrainConfig(lr=2e-3, warmup_steps=10, max_steps=110, min_lr_ratio=0.1)
    opt = build_optimizer(torch.nn.Linear(2, 2), cfg, torch.device("cpu"))
    sched = build_scheduler(opt, cfg)
    lrs = []
    for _ in range(111):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(2e-4) and lrs[10] == pytest.approx(2e-3)
    assert lrs[60] == pytest.approx(1.1e-3) and lrs[110] == pytest.approx(2e-4)


def test_weight_decay_only_on_matrices():
    opt = build_optimizer(torch.nn.Linear(3, 2), TrainConfig(weight_decay=0.05), torch.device("cpu"))
    decays = {tuple(p.shape): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert decays == {(2, 3): 0.05, (2,): 0.0}


def test_classification_metrics_match_sklearn():
    from sklearn.metrics import accuracy_score, f1_score

    y_true = [0, 0, 1, 1, 1, 2, 2, 0]
    y_pred = [0, 1, 1, 1, 0, 2, 1, 0]
    cm = torch.zeros(3, 3)
    for t, p in zip(y_true, y_pred):
        cm[t, p] += 1
    m = classification_metrics(cm)
    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    # class 2 absent from truth and predictions: it still counts, with F1 0 (labels=[0, 1, 2], as in evaluation)
    cm2 = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 0.0]])
    assert classification_metrics(cm2)["macro_f1"] == pytest.approx((0.8 + 6 / 7) / 3)


def test_training_learns_and_writes_outputs(tmp_path):
    summary = make_trainer(tmp_path, TrainConfig(**{**BASE, "max_steps": 24, "eval_every": 8})).fit()
    assert summary["steps"] == 24 and summary["stop_reason"] == "max_steps"
    losses = train_losses(tmp_path)
    assert sorted(losses) == list(range(1, 25))
    first, last = losses[1]["train/loss"], sum(losses[s]["train/loss"] for s in range(21, 25)) / 4
    assert last < 0.8 * first  # the toy rule is learnable
    assert set(losses[1]) == {"train/loss", "train/loss_classification", "train/loss_margin"}
    assert summary["best_val_macro_f1"] > 0.5
    assert (tmp_path / "checkpoints" / "best.pt").is_file() and (tmp_path / "checkpoints" / "last.pt").is_file()
    rows = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    train_row = next(r for r in rows if r["kind"] == "train")
    assert train_row["mem/rss_gb"] > 0 and train_row["samples_per_s"] > 0
    lrs = [r["lr"] for r in rows if r["kind"] == "train"]  # the lr each update used: warm-up 2, cosine to 0.1·lr
    assert lrs[:2] == pytest.approx([1.5e-2, 3e-2]) and lrs[-1] == pytest.approx(cosine_lr_factor(23, 2, 24, 0.1) * 3e-2)
    assert [r["step"] for r in rows if r["kind"] == "val"] == [8, 16, 24]
    info = json.loads((tmp_path / "run_info.json").read_text())
    assert info["environment"]["torch"] == torch.__version__ and info["data_fingerprint"] == "toy"
    assert info["environment"]["source_sha256"] == source_sha256()
    assert info["environment"]["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()


class _Interrupt(Exception):
    pass


def _interrupt_after(step: int, how: str):
    """Loss wrapper that kills the run (exception, like a crash) or sends SIGTERM (like a preemption)."""
    calls = {"n": 0}

    def loss_fn(outputs, batch):
        if outputs["logits"].requires_grad:  # training micro-batches only
            calls["n"] += 1
            if how == "crash" and calls["n"] == step + 1:
                raise _Interrupt
            if how == "sigterm" and calls["n"] == step:
                os.kill(os.getpid(), signal.SIGTERM)
        return toy_loss(outputs, batch)

    return loss_fn


@pytest.mark.parametrize("how,stop_at", [("crash", 8), ("sigterm", 7), ("max_steps", 9)])
def test_exact_resume(tmp_path, how, stop_at):
    """A run killed (crash, SIGTERM) or stopped by max_steps at step k and resumed with resume='auto'
    reproduces the uninterrupted per-step losses. 48 samples / batch 8 = 6 batches per epoch: every case
    resumes mid-epoch, after an epoch boundary, and off the evaluation schedule for SIGTERM / max_steps."""
    cfg = TrainConfig(**{**BASE, "max_steps": 14, "lr_decay_steps": 14})
    make_trainer(tmp_path / "full", cfg).fit()
    if how == "max_steps":  # the same cosine horizon (lr_decay_steps), a shorter first leg
        assert make_trainer(tmp_path / "cut", cfg.replace(max_steps=stop_at)).fit()["steps"] == stop_at
    elif how == "crash":
        with pytest.raises(_Interrupt):
            make_trainer(tmp_path / "cut", cfg, loss_fn=_interrupt_after(stop_at, how)).fit()
    else:
        assert make_trainer(tmp_path / "cut", cfg, loss_fn=_interrupt_after(stop_at, how)).fit()["stop_reason"] == \
            "sigterm"
    assert load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")["step"] == stop_at
    # a fresh process-like start: new model object with a different init, resumed from last.pt
    torch.manual_seed(1234)
    resumed = Trainer(ToyModel(), toy_loss, ToyDataset(48, seed=1), ToyDataset(16, seed=2), cfg, tmp_path / "cut",
                      make_loader=toy_loader, data_fingerprint="toy")
    assert resumed.fit(resume="auto")["steps"] == 14
    full, cut = train_losses(tmp_path / "full"), train_losses(tmp_path / "cut")
    assert sorted(cut) == list(range(1, 15))
    assert cut == full  # bit-identical losses, every component, every step


def test_resume_refuses_other_data(tmp_path):
    make_trainer(tmp_path, TrainConfig(**{**BASE, "max_steps": 4})).fit()
    other = Trainer(ToyModel(), toy_loss, ToyDataset(48, seed=1), None, TrainConfig(**{**BASE, "max_steps": 8}),
                    tmp_path, make_loader=toy_loader, data_fingerprint="another-store")
    with pytest.raises(InputValidationError, match="fingerprint"):
        other.fit(resume="auto")


def test_nan_loss_component_stops_with_debug_checkpoint(tmp_path):
    def nan_at_step_3(outputs, batch, calls={"n": 0}):
        losses = toy_loss(outputs, batch)
        if outputs["logits"].requires_grad:
            calls["n"] += 1
            if calls["n"] == 3:
                losses["margin"] = losses["margin"] * float("nan")
                losses["total"] = losses["classification"] + 0.01 * losses["margin"]
        return losses

    trainer = make_trainer(tmp_path, TrainConfig(**{**BASE, "max_steps": 10}), loss_fn=nan_at_step_3)
    with pytest.raises(TrainingInstabilityError, match=r"non-finite loss at step 3 in component 'margin'"):
        trainer.fit()
    debug = torch.load(tmp_path / "checkpoints" / "debug-step3.pt", weights_only=False)
    assert debug["step"] == 3 and len(debug["run_ids"]) == 8
    assert all(r.startswith("run-1-") for r in debug["run_ids"])
    assert math.isnan(debug["losses"]["margin"]) and "model" in debug


def test_nan_gradient_stops(tmp_path):
    model = ToyModel()
    calls = {"n": 0}

    def poison(grad):
        calls["n"] += 1
        return grad * float("inf") if calls["n"] == 2 else grad

    model.net[0].weight.register_hook(poison)
    trainer = make_trainer(tmp_path, TrainConfig(**{**BASE, "max_steps": 5}), model=model)
    with pytest.raises(TrainingInstabilityError, match=r"non-finite gradient norm at step 2"):
        trainer.fit()
    assert (tmp_path / "checkpoints" / "debug-step2.pt").is_file()


def test_early_stopping_after_patience(tmp_path):
    # lr so small the weights (and so the validation F1) never change: every evaluation after the first
    # is "no improvement", so patience 2 stops at the 3rd evaluation.
    cfg = TrainConfig(**{**BASE, "lr": 1e-12, "max_steps": 100, "eval_every": 2, "patience": 2})
    summary = make_trainer(tmp_path, cfg).fit()
    assert summary["stop_reason"] == "early_stopping" and summary["steps"] == 6 and summary["best_step"] == 2


def test_selection_on_log_loss_keeps_the_lowest_validation_log_loss(tmp_path):
    cfg = TrainConfig(**{**BASE, "max_steps": 12, "eval_every": 2, "select_on": "log_loss"})
    trainer = make_trainer(tmp_path, cfg)
    summary = trainer.fit()
    vals = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    vals = [v for v in vals if v.get("kind") == "val"]
    best = min(vals, key=lambda v: v["val/log_loss"])
    assert summary["best_step"] == best["step"] and trainer.best_score == pytest.approx(-best["val/log_loss"])
    assert selection_score({"val/log_loss": 0.5, "val/macro_f1": 0.7}, "log_loss") == -0.5
    assert selection_score({"val/log_loss": 0.5, "val/macro_f1": 0.7}, "macro_f1") == 0.7
    assert selection_score({}, "macro_f1") is None


def test_gradient_accumulation_matches_large_batch(tmp_path):
    # no dropout: 2 micro-batches of 4 accumulate to the same update as one batch of 8
    common = {**BASE, "max_steps": 1, "warmup_steps": 0, "eval_every": 10}
    weights = []
    for bs, accum in ((8, 1), (4, 2)):
        torch.manual_seed(0)
        model = ToyModel(dropout=0.0)
        make_trainer(tmp_path / f"{bs}", TrainConfig(**{**common, "batch_size": bs, "grad_accum_steps": accum}),
                     model=model).fit()
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    torch.testing.assert_close(weights[0], weights[1], rtol=1e-5, atol=1e-6)


def test_adamw8bit_runs(tmp_path):
    pytest.importorskip("bitsandbytes")
    model = ToyModel(features=8, hidden=1024)  # 8×1024 weight ≥ 4096 elements: quantised 8-bit states
    before = model.net[0].weight.detach().clone()
    trainer = make_trainer(tmp_path, TrainConfig(**{**BASE, "optimizer": "adamw8bit", "max_steps": 3}), model=model)
    assert type(trainer.optimizer).__name__ == "AdamW8bit"
    summary = trainer.fit()
    assert summary["steps"] == 3
    assert not torch.equal(before, model.net[0].weight.detach())
    states = trainer.optimizer.state[model.net[0].weight]
    assert states["state1"].dtype == torch.uint8  # 8-bit first moment
    assert all(math.isfinite(v["train/loss"]) for v in train_losses(tmp_path).values())


def test_memory_stats_reports_rss():
    stats = memory_stats(torch.device("cpu"))
    assert 0.01 < stats["rss_gb"] < 1000


def test_warnings_for_large_gradients_and_memory(tmp_path, caplog):
    cfg = TrainConfig(**{**BASE, "max_steps": 2, "grad_norm_warn": 1e-6, "memory_warn_gb": 1e-3})
    with caplog.at_level("WARNING", logger="astrobio.training"):
        make_trainer(tmp_path, cfg).fit()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("large gradient norm" in m for m in messages) == 2  # every step
    assert sum("above the 0.00 GB threshold" in m for m in messages) == 2  # every log step (log_every=1)


def test_time_budget_stops_cleanly_with_checkpoint(tmp_path):
    summary = make_trainer(tmp_path, TrainConfig(**{**BASE, "max_steps": 50, "max_minutes": 1e-9})).fit()
    assert summary["stop_reason"] == "max_minutes" and summary["steps"] == 1
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["step"] == 1


def test_fp16_autocast_with_grad_scaler(tmp_path):
    trainer = make_trainer(tmp_path, TrainConfig(**{**BASE, "precision": "fp16", "max_steps": 3}))
    assert trainer.scaler is not None
    summary = trainer.fit()
    assert summary["steps"] == 3
    scaler_state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")["scaler"]
    assert scaler_state["scale"] == 32768.0  # the first update overflowed at 2**16: skipped, scale halved

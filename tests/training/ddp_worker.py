"""Run by `torch.distributed.run` from test_distributed.py: a few DDP steps of the toy model, then of the
real tiny system; each rank writes its weights' checksum."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from trainer_toys import ToyDataset, ToyModel, toy_loader, toy_loss  # noqa: E402

from astrobio.training import TrainConfig, Trainer, init_distributed, state_checksum  # noqa: E402
from astrobio.training.distributed import cleanup  # noqa: E402


def main_system(out: Path, store: Path, ctx) -> None:
    """The real tiny system on a simulated store, through the same setup as `astrobio train`."""
    from astrobio.training.setup import build_system_run

    cfg = TrainConfig(preset="tiny", lr=1e-3, warmup_steps=1, max_steps=3, batch_size=2, eval_every=3, log_every=1,
                      tracking="none", seed=0)
    run = build_system_run(cfg, store, ctx)
    model = run["model"]
    summary = Trainer(model, run["loss_fn"], run["train"], run["val"], cfg, out / "run", ctx=ctx,
                      data_fingerprint=run["fingerprint"]).fit()
    (out / f"rank{ctx.rank}.sha256").write_text(state_checksum(model.state_dict()))
    (out / f"rank{ctx.rank}.json").write_text(json.dumps(summary))


def main_toy(out: Path, ctx) -> None:
    torch.manual_seed(100 + ctx.rank)  # different init per rank: DDP must broadcast rank 0's weights
    model = ToyModel(dropout=0.0)
    cfg = TrainConfig(lr=3e-2, warmup_steps=0, max_steps=5, batch_size=4, eval_every=5, log_every=1,
                      tracking="none", patience=1, seed=0)
    summary = Trainer(model, toy_loss, ToyDataset(40, seed=1), ToyDataset(10, seed=2), cfg, out / "run", ctx=ctx,
                      make_loader=toy_loader).fit()
    state = model.state_dict()
    (out / f"rank{ctx.rank}.sha256").write_text(state_checksum(state))
    torch.save({"state": state, "summary": summary}, out / f"rank{ctx.rank}.pt")


if __name__ == "__main__":
    # one launch for both jobs: process start-up (torch, PyG, transformers imports) dominates on 2 cores
    out = Path(sys.argv[1])
    ctx = init_distributed()
    (out / "toy").mkdir(parents=True, exist_ok=True)
    (out / "system").mkdir(parents=True, exist_ok=True)
    main_toy(out / "toy", ctx)
    main_system(out / "system", Path(sys.argv[2]), ctx)
    cleanup(ctx)

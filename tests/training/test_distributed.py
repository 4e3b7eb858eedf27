"""DDP with 2 gloo processes on CPU: identical weights on both ranks, equal to one process with the
combined batch (DistributedSampler shards the same seeded permutation)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from trainer_toys import ToyDataset, ToyModel, toy_loader, toy_loss

from astrobio.training import TrainConfig, Trainer
from astrobio.training.distributed import ResumableDistributedSampler, ShardSampler

HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sampler_shards_one_permutation_and_resumes_mid_epoch():
    ds = ToyDataset(10)
    ranks = [ResumableDistributedSampler(ds, num_replicas=2, rank=r, seed=3) for r in range(2)]
    single = ResumableDistributedSampler(ds, num_replicas=1, rank=0, seed=3)
    for s in (*ranks, single):
        s.set_epoch(1)
    perm = list(single)
    assert sorted(perm) == list(range(10))
    assert list(ranks[0]) == perm[0::2] and list(ranks[1]) == perm[1::2]
    single.set_epoch(1, skip=4)
    assert list(single) == perm[4:] and len(single) == 6
    single.set_epoch(2)
    assert list(single) != perm  # a new order each epoch
    assert list(ShardSampler(5, 2, 1)) == [1, 3]


def torchrun(*args: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), str(HERE / "ddp_worker.py"), *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_two_process_gloo_ddp_real_system(tiny_store, tmp_path):
    """The tiny system under DDP with find_unused_parameters=False (every submodule is in the graph,
    missing modalities included): both ranks end with bit-identical weights."""
    torchrun(str(tmp_path), str(tiny_store))
    hashes = [(tmp_path / f"rank{r}.sha256").read_text() for r in range(2)]
    assert hashes[0] == hashes[1]
    summaries = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert summaries[0]["steps"] == 3 and summaries[0]["world_size"] == 2
    assert summaries[0]["final_val"] == summaries[1]["final_val"]  # all-reduced validation metrics
    rows = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2, 3]  # rank 0 only writes
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()


def test_two_process_gloo_ddp_keeps_weights_identical(tmp_path):
    torchrun(str(tmp_path))
    hashes = [(tmp_path / f"rank{r}.sha256").read_text() for r in range(2)]
    assert hashes[0] == hashes[1]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    assert ranks[0]["summary"]["steps"] == 5 and ranks[0]["summary"]["world_size"] == 2
    assert ranks[0]["summary"]["final_val"] == ranks[1]["summary"]["final_val"]  # all-reduced metrics
    assert (tmp_path / "run" / "history.jsonl").is_file() and (tmp_path / "run" / "checkpoints" / "last.pt").is_file()

    # one process, batch 8 = the 2 × 4 shards of the same permutation: the same weights (up to fp rounding)
    torch.manual_seed(100)  # rank 0's init, which DDP broadcast
    model = ToyModel(dropout=0.0)
    cfg = TrainConfig(lr=3e-2, warmup_steps=0, max_steps=5, batch_size=8, eval_every=5, log_every=1,
                      tracking="none", seed=0)
    Trainer(model, toy_loss, ToyDataset(40, seed=1), ToyDataset(10, seed=2), cfg, tmp_path / "single",
            make_loader=toy_loader).fit()
    for name, value in model.state_dict().items():
        torch.testing.assert_close(ranks[0]["state"][name], value, rtol=1e-5, atol=1e-6)

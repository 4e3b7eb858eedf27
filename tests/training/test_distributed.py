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


def test_two_process_gloo_ddp(tiny_store, tmp_path):
    """2 gloo processes (torch.distributed.run), one launch: the toy model, then the real tiny system with
    find_unused_parameters=False (every submodule stays in the graph, missing modalities included)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), str(HERE / "ddp_worker.py"), str(tmp_path), str(tiny_store)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    # real system: bit-identical weights on both ranks, all-reduced validation, rank 0 alone writes files
    system = tmp_path / "system"
    assert (system / "rank0.sha256").read_text() == (system / "rank1.sha256").read_text()
    summaries = [json.loads((system / f"rank{r}.json").read_text()) for r in range(2)]
    assert summaries[0]["steps"] == 3 and summaries[0]["world_size"] == 2
    assert summaries[0]["final_val"] == summaries[1]["final_val"]
    rows = [json.loads(line) for line in (system / "run" / "history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2, 3]
    assert (system / "run" / "checkpoints" / "last.pt").is_file()

    # toy: identical weights, and equal to one process with batch 8 = the 2 × 4 shards of one permutation
    toy = tmp_path / "toy"
    assert (toy / "rank0.sha256").read_text() == (toy / "rank1.sha256").read_text()
    ranks = [torch.load(toy / f"rank{r}.pt", weights_only=False) for r in range(2)]
    assert ranks[0]["summary"]["steps"] == 5 and ranks[0]["summary"]["final_val"] == ranks[1]["summary"]["final_val"]
    torch.manual_seed(100)  # rank 0's init, which DDP broadcast
    model = ToyModel(dropout=0.0)
    cfg = TrainConfig(lr=3e-2, warmup_steps=0, max_steps=5, batch_size=8, eval_every=5, log_every=1,
                      tracking="none", seed=0)
    Trainer(model, toy_loss, ToyDataset(40, seed=1), ToyDataset(10, seed=2), cfg, tmp_path / "single",
            make_loader=toy_loader).fit()
    for name, value in model.state_dict().items():
        torch.testing.assert_close(ranks[0]["state"][name], value, rtol=1e-5, atol=1e-6)

"""astrobio.demo: the training command, its ranks and thread counts."""

from pathlib import Path

import pytest

from astrobio.demo import DEMO_BATCH, DEMO_TRAIN_RANKS, demo_train_ranks, train_command, train_environment
from astrobio.errors import InputValidationError


def test_train_environment_sets_every_thread_count():
    # a caller's environment as distributed's nannies leave it (distributed.nanny.pre-spawn-environ)
    leaked = {"OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "HOME": "/h"}
    env = train_environment(leaked, 2)
    assert (env["OMP_NUM_THREADS"], env["MKL_NUM_THREADS"], env["OPENBLAS_NUM_THREADS"]) == ("2", "2", "2")
    assert env["HOME"] == "/h" and leaked["MKL_NUM_THREADS"] == "1"  # the rest kept, the caller's dict untouched


def option(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]


def test_train_command_splits_the_global_batch_over_single_thread_ranks():
    cmd, env = train_command(Path("d"), Path("r"), "small", 800, 8.0, 3, 4, {"OMP_NUM_THREADS": "8"})
    assert DEMO_TRAIN_RANKS == 2 and DEMO_BATCH == 16
    assert cmd[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    assert cmd[6:10] == ["-m", "astrobio.cli", "train", "d"]
    assert int(option(cmd, "--batch-size")) * DEMO_TRAIN_RANKS == DEMO_BATCH
    assert (option(cmd, "--max-steps"), option(cmd, "--seed"), option(cmd, "--patience")) == ("800", "3", "4")
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"
    # one rank: no launcher, the whole batch
    single, _ = train_command(Path("d"), Path("r"), "small", 10, 0, 0, 0, {}, ranks=1)
    assert single[1:5] == ["-m", "astrobio.cli", "train", "d"] and option(single, "--batch-size") == "16"
    with pytest.raises(InputValidationError, match="ranks=3"):
        train_command(Path("d"), Path("r"), "small", 10, 0, 0, 0, {}, ranks=3)


def test_demo_trains_one_rank_per_cpu_up_to_two_and_one_process_on_a_gpu():
    assert [demo_train_ranks(False, n) for n in (1, 2, 16)] == [1, 2, 2]
    assert demo_train_ranks(True, 16) == 1

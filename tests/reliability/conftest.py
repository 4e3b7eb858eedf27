"""Shared helpers of the reliability suite: subprocesses killed with SIGKILL, trial counts, a seeded RNG.

`ASTROBIO_RELIABILITY_TRIALS` (default 2) sets how many kills each kill test makes; `ASTROBIO_RELIABILITY_SEED`
(default 0) seeds the kill moments, so a failing schedule can be replayed exactly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

TRIALS = int(os.environ.get("ASTROBIO_RELIABILITY_TRIALS", "2"))
SEED = int(os.environ.get("ASTROBIO_RELIABILITY_SEED", "0"))
ASTROBIO = str(Path(sys.executable).with_name("astrobio"))


@pytest.fixture
def kill_rng() -> np.random.Generator:
    return np.random.default_rng(SEED)


def run_to_end(cmd: list[str], timeout: float = 600) -> float:
    """Run `cmd` to completion (it must succeed); return its wall time in seconds."""
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, start_new_session=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return time.perf_counter() - t0


def run_and_kill(cmd: list[str], after_s: float) -> bool:
    """Start `cmd` in its own session and SIGKILL its whole process group `after_s` seconds later (workers
    included). True when the kill landed (the command was still running), False when it had finished."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        proc.wait(timeout=after_s)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return True

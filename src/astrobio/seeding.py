"""One seed for every random number generator a run uses (python, numpy, torch).

Lives outside the trainer because evaluation, prediction and serving seed the same way: the Monte-Carlo
dropout passes of `predict` must give the same answer from the CLI and from `POST /api/predict`.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python's `random`, numpy's global generator (mod 2**32, its range) and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)

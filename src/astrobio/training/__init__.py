"""astrobio.training: the trainer, its config, checkpoints, DDP helpers and experiment tracking.

    from astrobio.training import TrainConfig, Trainer
    summary = Trainer(model, loss_fn, train_ds, val_ds, TrainConfig(max_steps=100), "runs/r1").fit(resume="auto")

`astrobio train` (see `astrobio.training.cli`) wires it to the data store and the model presets.
"""

from astrobio.training.checkpoint import atomic_torch_save, data_fingerprint, load_checkpoint, state_checksum
from astrobio.training.config import TrainConfig
from astrobio.training.distributed import DistContext, init_distributed
from astrobio.training.trainer import Trainer, classification_metrics, cosine_lr_factor

__all__ = ["TrainConfig", "Trainer", "DistContext", "init_distributed", "atomic_torch_save", "load_checkpoint",
           "data_fingerprint", "state_checksum", "classification_metrics", "cosine_lr_factor"]

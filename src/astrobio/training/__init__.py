"""astrobio.training: the trainer, its config, checkpoints, DDP helpers and experiment tracking.

    from astrobio.training import TrainConfig, Trainer
    summary = Trainer(model, loss_fn, train_ds, val_ds, TrainConfig(max_steps=100), "runs/r1").fit(resume="auto")

`astrobio train` (`astrobio.cli.train`, through `astrobio.training.setup`) wires it to the data store and the
model presets. Names are imported lazily, so `import astrobio.training.config` (the command line builds the
`train` flags from it at start-up) does not load torch.
"""

from importlib import import_module

_LAZY = {
    "TrainConfig": "astrobio.training.config",
    "Trainer": "astrobio.training.trainer",
    "classification_metrics": "astrobio.training.trainer",
    "cosine_lr_factor": "astrobio.training.trainer",
    "DistContext": "astrobio.training.distributed",
    "init_distributed": "astrobio.training.distributed",
    "atomic_torch_save": "astrobio.training.checkpoint",
    "data_fingerprint": "astrobio.training.checkpoint",
    "load_checkpoint": "astrobio.training.checkpoint",
    "state_checksum": "astrobio.training.checkpoint",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'astrobio.training' has no attribute {name!r}")

"""astrobio.data: annotation, HDF5 + SQLite storage, quality control, datasets and batches.

Public names are imported lazily (h5py, torch and PyG load only when used).
"""

_LAZY = {
    "RealDataStorage": "astrobio.data.storage",
    "ComprehensiveDataAnnotationSystem": "astrobio.data.annotation",
    "AdvancedDataQualityManager": "astrobio.data.quality",
    "PlanetRunDataset": "astrobio.data.dataset",
    "collate_multimodal_batch": "astrobio.data.dataset",
    "make_dataloader": "astrobio.data.dataset",
    "MultiModalBatch": "astrobio.data.batch",
    "MODALITIES": "astrobio.data.batch",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'astrobio.data' has no attribute {name!r}")

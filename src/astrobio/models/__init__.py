"""astrobio.models: the modality encoders, the cross-modal fusion, the unified system and its loss.

Seed names (spec/seed-report.txt) are aliases of the descriptive primary names, all listed here:

| seed name | primary name | module |
|---|---|---|
| `RebuiltDatacubeCNN` | `ClimateDatacubeModel` | `astrobio.models.datacube` |
| `RebuiltGraphVAE` | `MetabolicGraphVAE` | `astrobio.models.graph` |
| `RebuiltLLMIntegration` | `ConditionedLlama` | `astrobio.models.language` |
| `RebuiltMultimodalIntegration` | `CrossModalFusion` | `astrobio.models.fusion` |
| `UnifiedMultiModalSystem` | (same) | `astrobio.models.system` |
| `compute_multimodal_loss` | (same) | `astrobio.models.losses` |
| `count_parameters` | (same) | `astrobio.models.memory` |

Names are imported lazily, so `import astrobio.models` does not load torch / PyG / transformers.
"""

from importlib import import_module

_LAZY = {
    # primary name: (module, attribute)
    "ClimateDatacubeModel": ("astrobio.models.datacube", "ClimateDatacubeModel"),
    "DatacubeConfig": ("astrobio.models.datacube", "DatacubeConfig"),
    "latitude_weighted_mse": ("astrobio.models.datacube", "latitude_weighted_mse"),
    "MetabolicGraphVAE": ("astrobio.models.graph", "MetabolicGraphVAE"),
    "GraphVAEConfig": ("astrobio.models.graph", "GraphVAEConfig"),
    "SpectrumEncoder": ("astrobio.models.spectrum", "SpectrumEncoder"),
    "SpectrumEncoderConfig": ("astrobio.models.spectrum", "SpectrumEncoderConfig"),
    "ConditionedLlama": ("astrobio.models.language", "ConditionedLlama"),
    "LanguageConfig": ("astrobio.models.language", "LanguageConfig"),
    "CrossModalFusion": ("astrobio.models.fusion", "CrossModalFusion"),
    "FusionConfig": ("astrobio.models.fusion", "FusionConfig"),
    "UnifiedMultiModalSystem": ("astrobio.models.system", "UnifiedMultiModalSystem"),
    "SystemConfig": ("astrobio.models.system", "SystemConfig"),
    "LossConfig": ("astrobio.models.losses", "LossConfig"),
    "compute_multimodal_loss": ("astrobio.models.losses", "compute_multimodal_loss"),
    "count_parameters": ("astrobio.models.memory", "count_parameters"),
    # seed aliases
    "RebuiltDatacubeCNN": ("astrobio.models.datacube", "ClimateDatacubeModel"),
    "RebuiltGraphVAE": ("astrobio.models.graph", "MetabolicGraphVAE"),
    "RebuiltLLMIntegration": ("astrobio.models.language", "ConditionedLlama"),
    "RebuiltMultimodalIntegration": ("astrobio.models.fusion", "CrossModalFusion"),
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(import_module(module), attr)
    raise AttributeError(f"module 'astrobio.models' has no attribute {name!r}")

"""Moved to `astrobio.metrics` (layer-neutral, so the trainer uses it without importing evaluation/).

Transitional alias, to delete once its last importers import `astrobio.metrics`: evaluation/predict.py,
benchmarks/quality.py and benchmarks/information.py (files being edited by others when it moved). The alias
is the same module object, so `astrobio.evaluation.metrics.X is astrobio.metrics.X` for every name.
"""

import sys

from astrobio import metrics

sys.modules[__name__] = metrics

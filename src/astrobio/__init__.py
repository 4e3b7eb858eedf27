"""astrobio: multi-modal astrobiology machine learning.

Data flows world/ -> data/ -> models/ -> training/ -> evaluation/ (see docs/architecture.md).
"""

__version__ = "0.1.0"

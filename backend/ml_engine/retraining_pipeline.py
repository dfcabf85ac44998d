"""The guide's module path for the retraining pipeline (``RetrainingPipeline``, triggers ``scheduled``,
``drift``, ``performance_drop``): everything lives in :mod:`backend.ml_engine.retraining`.

    python -m backend.ml_engine.retraining_pipeline run --trigger manual
"""

import sys

from backend.ml_engine.retraining import *  # noqa: F403 - the guide's path re-exports the package
from backend.ml_engine.retraining import __all__ as __all__, main

if __name__ == "__main__":
    sys.exit(main())

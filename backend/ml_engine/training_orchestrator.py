"""The guide's module path for training: ``TrainingOrchestrator().train_model(...)`` and the CLI
``python -m backend.ml_engine.training_orchestrator --epochs 100 --batch-size 128 --lr 0.0005 --date-range 60``.

Everything lives in :mod:`backend.ml_engine.training`; this module re-exports its public names.
"""

import sys

from backend.ml_engine.training import *  # noqa: F403 - the guide's path re-exports the package
from backend.ml_engine.training import __all__ as __all__, main

if __name__ == "__main__":
    sys.exit(main())

"""``python -m backend.ml_engine.retraining``: the retraining command line."""

import sys

from ._cli import main

sys.exit(main())

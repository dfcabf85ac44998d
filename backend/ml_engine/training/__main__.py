"""``python -m backend.ml_engine.training``: the training command line."""

import sys

from ._cli import main

sys.exit(main())

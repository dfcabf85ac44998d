"""``python -m backend.ml_engine.tuning``: the search's command line (``_cli``)."""

from ._cli import main

raise SystemExit(main())

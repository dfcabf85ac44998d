"""``python -m backend.ml_engine.leaderboard``: the leaderboard's command line (``_cli``)."""

from ._cli import main

raise SystemExit(main())

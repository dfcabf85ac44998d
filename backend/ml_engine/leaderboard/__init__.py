"""Leaderboard: every model family with its default config against the naive baselines, on the SAME
walk-forward folds, with block-bootstrap intervals and paired tests.

    python -m backend.ml_engine.leaderboard --quick            # a minute: a few days, 1 epoch, 2 folds
    python -m backend.ml_engine.leaderboard --families lightgbm,logreg --folds 3

Library use::

    from backend.ml_engine.leaderboard import LeaderboardConfig, run_leaderboard
    cfg = LeaderboardConfig.from_settings(settings, families=["lightgbm", "logreg"], folds=3)
    result = run_leaderboard(cfg, settings=settings)       # LeaderboardResult
    result.markdown(); result.to_dict(); result.run_id; result.artifacts

Per model: accuracy, macro F1, log loss, Brier score, ECE, Sharpe, total return and max drawdown
after fees (the :class:`~backend.ml_engine.signal_policy.SignalPolicy`), mean net return per bar,
each with a 95 % block-bootstrap interval over the pooled out-of-sample predictions; number of
trades, training time, single-window inference latency (ONNX Runtime), parameter count; each
family's paired test against each baseline on accuracy (the primary metric) and on the mean net
return per bar (``_stats`` says why and how). Outputs: ``leaderboard.md``, ``leaderboard.png``,
``leaderboard.json``, ``reliability.png`` and a run of the MLflow experiment ``model_comparison``;
:func:`latest_leaderboard` reads the newest back.

Package: ``_config`` (LeaderboardConfig), ``_stats`` (metrics, intervals, tests), ``_run``
(run_leaderboard, LeaderboardResult, latest_leaderboard), ``_report`` (verdict, Markdown, chart),
``_cli``.
"""

from ._cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, build_parser, main
from ._config import BASELINES, QUICK_OVERRIDES, LeaderboardConfig
from ._run import (
    ARTIFACT_JSON,
    LeaderboardInputError,
    LeaderboardResult,
    latest_leaderboard,
    run_leaderboard,
)
from ._stats import METRICS, block_length

__all__ = [
    "ARTIFACT_JSON",
    "BASELINES",
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "EXIT_OK",
    "METRICS",
    "QUICK_OVERRIDES",
    "LeaderboardConfig",
    "LeaderboardInputError",
    "LeaderboardResult",
    "block_length",
    "build_parser",
    "latest_leaderboard",
    "main",
    "run_leaderboard",
]

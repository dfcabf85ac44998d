"""Issue 15, acceptance point 1: a search over the window finds the one that sees the pattern.

The synthetic candles (``synthetic.delayed_cue_candles``) announce each jump of the close 30 candles
ahead by a one-candle upper (jump up) or lower (jump down) wick; a sign-free volume burst marks the 6
candles before the jump. At the rows whose 6-candle label sees the jump, the wick lies 24-29 candles
back: the tabular columns of a window of 8 or 16 (last row, lags, statistics over the window) hold
no sign of it (the wick moves no close-based feature; ATR and volume carry no direction), those of a
window of 32 or 64 do (the wicks' max over the window). Everything but the window is fixed.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from conftest import make_settings
from synthetic import write_delayed_cue_csv

from backend.ml_engine.training import DataSpec
from backend.ml_engine.tuning import TuningConfig, run_study

pytestmark = pytest.mark.slow

SPACE = """
[search]
family = "logreg"

[common]
window = { choices = [8, 16, 32, 64] }
threshold_mode = "fixed"
threshold = 0.003

[logreg]
C = 1.0
"""

#: Measured: this study's mean validation accuracy per window is 0.857 (8), 0.853 (16), 0.944 (32),
#: 0.940 (64); on candles of seed 1 the gap between the sides is 0.05. Demanded: 0.03.
MARGIN = 0.03


def test_a_12_trial_search_over_the_window_picks_one_that_sees_the_cue(tmp_path: Path) -> None:
    csv = write_delayed_cue_csv(tmp_path, n=4000, seed=0)
    (tmp_path / "space.toml").write_text(SPACE)
    config = TuningConfig(
        data=DataSpec(path=str(csv)),
        space_path=str(tmp_path / "space.toml"),
        objective="accuracy",
        n_trials=12,
        holdout_frac=0.2,
        folds=3,
        horizon=6,
        seed=7,
        pruner="none",
        study_name="window",
        storage=f"sqlite:///{tmp_path}/optuna.db",
        model_options={"logreg": {"max_iter": 100}},
    )
    result = run_study(config, settings=make_settings(tmp_path), tracking=False)

    assert result.n_trials == 12 and result.states == {"COMPLETE": 12}
    assert result.best_params["window"] >= 32
    study = optuna.load_study(study_name="window", storage=config.storage)
    by_window: dict[int, float] = {}
    for t in study.trials:
        w = int(t.params["window"])
        by_window[w] = max(by_window.get(w, 0.0), float(t.value))
    wide = [v for w, v in by_window.items() if w >= 32]
    narrow = [v for w, v in by_window.items() if w <= 16]
    assert wide and narrow, f"the sampler left a side untried: {by_window}"
    assert max(wide) > max(narrow) + MARGIN, f"best accuracy per window: {by_window}"
    assert result.holdout is not None and result.holdout["trial"] == result.best_trial  # read once, for the winner

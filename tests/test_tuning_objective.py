"""The search's objective without peeking (issue 15, point 3): trials are scored on walk-forward
validation folds of the search region only; the final holdout is read once per study."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from conftest import SAMPLE_DATA

from backend.ml_engine.data import load_candles
from backend.ml_engine.tuning import (
    HoldoutAlreadyRead,
    SearchData,
    TrialParams,
    evaluate_trial,
    load_search_space,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data() -> SearchData:
    series = load_candles(str(SAMPLE_DATA), symbols=["ETH/BTC", "LTC/BTC"], date_range_days=4)
    return SearchData(series, holdout_frac=0.25, n_folds=2)


LOGREG = TrialParams(family="logreg", model_options={"max_iter": 100}, data={"window": 16})


def test_trials_never_see_the_holdout(data: SearchData) -> None:
    table = data.table(16, {})
    search, holdout = data.cut(table)
    assert search.size and holdout.size
    gap_ns = (table.window + table.horizon) * table.bar_ns
    assert table.times_ns[search].max() < table.times_ns[holdout].min() - gap_ns  # a purge gap between
    for fold in data.folds(table):
        for part in (fold.train, fold.val, fold.test):
            assert np.isin(part, search).all()  # nothing of a fold comes from the holdout
    score = evaluate_trial(data, LOGREG)
    assert np.isin(score.rows, search).all() and not np.isin(score.rows, holdout).any()
    assert score.net.shape == score.rows.shape and len(score.folds) == 2
    assert 0.0 <= score.value <= 1.0 and score.value == pytest.approx(np.mean([f["accuracy"] for f in score.folds]))


def test_the_holdout_is_read_once_per_study(data: SearchData) -> None:
    from backend.ml_engine.signal_policy import SignalPolicy

    fresh = SearchData(data.series, holdout_frac=0.25, n_folds=2)
    assert fresh.holdout_reads == 0
    evaluate_trial(fresh, LOGREG)  # searching never reads it
    assert fresh.holdout_reads == 0
    held = fresh.read_holdout(LOGREG, {}, SignalPolicy(), default_window=16)
    assert fresh.holdout_reads == 1 and held.rows > 0 and 0.0 <= held.metrics["accuracy"] <= 1.0
    with pytest.raises(HoldoutAlreadyRead, match="peeking"):
        fresh.read_holdout(LOGREG, {}, SignalPolicy(), default_window=16)
    assert fresh.holdout_reads == 1


def test_an_optuna_study_over_the_bundled_space_runs_and_prunes(data: SearchData) -> None:
    space = load_search_space().for_family("logreg")
    pruned_or_done = []

    def objective(trial: optuna.Trial) -> float:
        params = space.suggest(trial)
        params = TrialParams(
            family=params.family,
            model_options={**params.model_options, "max_iter": 100},
            trainer=params.trainer,
            data={**params.data, "window": 16},
            values=params.values,
        )
        return evaluate_trial(data, params, trial=trial).value

    sampler = optuna.samplers.TPESampler(seed=3)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    study.optimize(objective, n_trials=4, callbacks=[lambda s, t: pruned_or_done.append(t.state)])
    states = {t.state for t in study.trials}
    assert optuna.trial.TrialState.COMPLETE in states and len(study.trials) == 4
    assert states <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    assert 0.0 <= study.best_value <= 1.0
    # every reported value is a validation-fold mean
    assert all(0.0 <= v <= 1.0 for t in study.trials for v in t.intermediate_values.values())


def test_unknown_objective_is_refused(data: SearchData) -> None:
    with pytest.raises(ValueError, match="unknown objective 'sharpe'"):
        evaluate_trial(data, LOGREG, objective="sharpe")


def test_pruning_goes_through_the_trainers_epoch_callback(data: SearchData) -> None:
    """A network's trial is judged after every epoch: a pruner that gives up at the first report stops the
    training after epoch 1 of fold 1 (of 3 epochs x 2 folds), and the epoch's metric is what was reported."""
    from backend.ml_engine.tuning._objective import STEP_STRIDE

    epochs_seen: list[int] = []

    class Spy:
        def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
            epochs_seen.append(epoch)

    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=2.0))
    trial = study.ask()
    tcn = TrialParams(family="tcn", model_options={"channels": 8, "levels": 2}, data={"window": 16})
    with pytest.raises(optuna.TrialPruned, match="epoch 1 of fold 1"):
        evaluate_trial(data, tcn, trainer={"epochs": 3}, trial=trial, callbacks=[Spy()])
    assert epochs_seen == [1]  # stopped inside the first fit, after its first epoch
    frozen = study._storage.get_trial(trial._trial_id)
    assert list(frozen.intermediate_values) == [0 * STEP_STRIDE + 1]
    assert 0.0 <= frozen.intermediate_values[1] <= 1.0  # the epoch's validation accuracy

    # a pruner that never gives up sees every epoch of every fold, then each fold's running mean
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=-1.0))
    trial = study.ask()
    evaluate_trial(data, tcn, trainer={"epochs": 2, "early_stopping_patience": None}, trial=trial)
    steps = sorted(study._storage.get_trial(trial._trial_id).intermediate_values)
    assert steps == [1, 2, STEP_STRIDE - 1, STEP_STRIDE + 1, STEP_STRIDE + 2, 2 * STEP_STRIDE - 1]

    # with no pruner (pruner "none") the per-epoch reports are skipped (a storage write each): fold means only
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    trial = study.ask()
    evaluate_trial(data, tcn, trainer={"epochs": 2, "early_stopping_patience": None}, trial=trial)
    steps = sorted(study._storage.get_trial(trial._trial_id).intermediate_values)
    assert steps == [STEP_STRIDE - 1, 2 * STEP_STRIDE - 1]

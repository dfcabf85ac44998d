"""Search spaces (backend.ml_engine.tuning): the bundled defaults build valid configs for every family,
bad files fail with one clear line, the fingerprint identifies a space, the family can be a choice,
and a user's file replaces the tables it has."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import optuna
import pytest

from backend.ml_engine.families import family_names, make_config
from backend.ml_engine.labels import LabelConfig
from backend.ml_engine.trainer import TrainerConfig
from backend.ml_engine.tuning import SearchSpaceError, load_search_space, parse_search_space

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _study(seed: int = 0) -> optuna.Study:
    return optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.toml"
    path.write_text(text)
    return path


def test_defaults_cover_every_family_and_every_sampled_trial_builds_valid_configs() -> None:
    space = load_search_space()
    assert set(space.families) == set(family_names())
    for fam in space.families:
        narrowed = space.for_family(fam)
        assert narrowed.families == (fam,)
        assert narrowed.for_family(fam).fingerprint() == narrowed.fingerprint()
        study = _study()
        for _ in range(20):
            trial = study.ask()
            params = narrowed.suggest(trial)
            assert params.family == fam and params.model_options
            assert params.window is not None
            make_config(fam, params.model_options, n_features=22, window=params.window)
            TrainerConfig(**params.trainer)
            LabelConfig(**params.labels)
            study.tell(trial, 0.0)
        # FixedTrial: the space's lower bounds / first choices also build
        fixed = {k: (d.choices[0] if hasattr(d, "choices") else d.low) for k, d in narrowed.distributions().items()}
        params = narrowed.suggest(optuna.trial.FixedTrial(fixed))
        make_config(fam, params.model_options, n_features=22, window=params.window or 60)
        TrainerConfig(**params.trainer)


def test_defaults_are_what_the_issue_lists() -> None:
    space = load_search_space()
    names = {fam: {p.name: p for p in space.tables[fam]} for fam in space.families}
    hybrid = names["hybrid_cnn_lstm"]
    for n in ("learning_rate", "lstm_hidden", "lstm_layers", "dropout", "conv_channels", "batch_size", "weight_decay"):
        assert n in hybrid
    assert hybrid["learning_rate"].target == "trainer" and hybrid["learning_rate"].log
    assert hybrid["lstm_layers"].kind == "int" and hybrid["lstm_hidden"].target == "model"
    assert {p.name for p in space.common} >= {"window", "vol_multiplier"}
    assert all(p.target == "data" for p in space.common)
    lgb = names["lightgbm"]
    assert {"num_leaves", "max_depth", "learning_rate", "feature_fraction", "min_child_samples", "lambda_l2"} <= set(
        lgb
    )
    assert lgb["learning_rate"].target == "model"  # the booster's, not the trainer's
    assert names["logreg"]["C"].log
    trainer_fields = {f.name for f in dataclasses.fields(TrainerConfig)}
    assert all(p.name in trainer_fields for fam in names.values() for p in fam.values() if p.target == "trainer")


def test_several_families_without_a_choice_must_be_narrowed() -> None:
    with pytest.raises(SearchSpaceError, match=r"for_family\(name\)"):
        load_search_space().suggest(_study().ask())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[hybrid_cnn_lstm]\nlstm_hiden = { choices = [32] }\n",
            r"\[hybrid_cnn_lstm\] lstm_hiden: unknown parameter \(options of hybrid_cnn_lstm: .*lstm_hidden.*; trainer: .*batch_size.*; data: window",
        ),
        (
            "[hybrid_cnn_lstm]\nnum_leaves = { low = 8, high = 64 }\n",
            r"\[hybrid_cnn_lstm\] num_leaves: an option of lightgbm, not of hybrid_cnn_lstm: put it under \[lightgbm\]",
        ),
        (
            "[common]\ndropout = { low = 0.0, high = 0.5 }\n",
            r"\[common\] dropout: an option of hybrid_cnn_lstm and tcn",
        ),
        ("[lightgbm]\nbatch_size = { choices = [64] }\n", r"lightgbm does not train with the Trainer"),
        (
            "[xgboost]\neta = { low = 0.1, high = 0.3 }\n",
            r"unknown table \[xgboost\]: expected \[common\], \[search\] or a family: hybrid_cnn_lstm",
        ),
        (
            "[tcn]\ndropout = { low = 0.4, high = 0.1 }\n",
            r"\[tcn\] dropout: empty or inverted range: low = 0.4 must be below high = 0.1",
        ),
        ("[tcn]\ndropout = { low = 0.2, high = 0.2 }\n", r"empty or inverted range"),
        ("[tcn]\nchannels = { choices = [] }\n", r"\[tcn\] channels: empty choices"),
        ("[logreg]\nC = { low = 0.0, high = 10.0, log = true }\n", r"\[logreg\] C: a log-scale range needs low > 0"),
        (
            '[tcn]\nlevels = { low = 1.5, high = 4, type = "int" }\n',
            r"\[tcn\] levels: an int range needs integer bounds",
        ),
        (
            '[tcn]\nlevels = { low = 1, high = 4, type = "float" }\n',
            r"levels is an integer; type = \"float\" does not fit",
        ),
        (
            "[tcn]\ndropout = { low = 0.0, high = 0.99 }\n",
            r"\[tcn\] dropout: tcn: option dropout=0.99: must be <= 0.95",
        ),
        ("[tcn]\nlevels = { low = 1 }\n", r"needs both low and high"),
        ("[tcn]\nlevels = { low = 1, high = 3, step = 1 }\n", r"unknown key 'step'"),
        ("[common]\nwindow = { choices = [30, 30] }\n", r"listed twice"),
        ("[common]\nvol_multiplier = { low = -1.0, high = 1.0 }\n", r"vol_multiplier must be a finite number >= 0"),
        (
            '[search]\nfamily = { choices = ["hybrid_cnn_lstm", "prophet"] }\n',
            r"\[search\] family: unknown model family 'prophet'",
        ),
        ("window = 30\n", r"top-level key 'window': parameters go in a table"),
        ("[tcn]\ndropout = { low = 0.0 high = 0.5 }\n", r"space\.toml: not valid TOML: .*\(at line 2, column"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(SearchSpaceError, match=expected) as info:
        load_search_space(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))


def test_fingerprint_is_stable_across_key_order_and_changes_with_the_space() -> None:
    a = parse_search_space(
        {
            "common": {"window": {"choices": [30, 60]}, "vol_multiplier": {"low": 0.2, "high": 0.5}},
            "lightgbm": {"num_leaves": {"low": 8, "high": 64, "log": True}, "max_depth": {"choices": [4, 8]}},
        }
    )
    b = parse_search_space(
        {
            "lightgbm": {"max_depth": {"choices": [4, 8]}, "num_leaves": {"log": True, "high": 64, "low": 8}},
            "common": {"vol_multiplier": {"high": 0.5, "low": 0.2}, "window": {"choices": [30, 60]}},
        }
    )
    assert a.fingerprint() == b.fingerprint()
    assert len(a.fingerprint()) == 64
    c = parse_search_space(
        {
            "common": {"window": {"choices": [30, 60]}, "vol_multiplier": {"low": 0.2, "high": 0.6}},
            "lightgbm": {"num_leaves": {"low": 8, "high": 64, "log": True}, "max_depth": {"choices": [4, 8]}},
        }
    )
    assert c.fingerprint() != a.fingerprint()
    assert load_search_space().fingerprint() == load_search_space().fingerprint()
    assert load_search_space().for_family("tcn").fingerprint() != load_search_space().for_family("logreg").fingerprint()


def test_family_as_a_choice_samples_several_families(tmp_path: Path) -> None:
    path = _write(tmp_path, '[search]\nfamily = { choices = ["hybrid_cnn_lstm", "lightgbm", "logreg"] }\n')
    space = load_search_space(path)
    assert space.families == ("hybrid_cnn_lstm", "lightgbm", "logreg") and space.family_is_choice
    dists = space.distributions()
    assert "family" in dists and "lightgbm.learning_rate" in dists and "hybrid_cnn_lstm.learning_rate" in dists
    study = _study(seed=1)
    seen = set()
    for _ in range(20):
        trial = study.ask()
        params = space.suggest(trial)
        seen.add(params.family)
        assert params.values["family"] == params.family
        make_config(params.family, params.model_options, n_features=22, window=params.window or 60)
        TrainerConfig(**params.trainer)
        if params.family != "hybrid_cnn_lstm":
            assert params.trainer == {}
        study.tell(trial, 0.0)
    assert len(seen) > 1
    assert len(study.trials) == 20


def test_a_user_file_replaces_the_tables_it_has(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "[common]\nwindow = { choices = [8, 16, 32, 64] }\n"
        "[hybrid_cnn_lstm]\nlstm_hidden = { choices = [16, 32] }\nconv_channels = { choices = [[16, 32], 64] }\n"
        "epochs = 3\nhorizon = { choices = [3, 6] }\n",
    )
    space = load_search_space(path)
    defaults = load_search_space()
    assert [p.name for p in space.common] == ["window"]  # [common] replaced: vol_multiplier no longer searched
    hybrid = {p.name: p for p in space.tables["hybrid_cnn_lstm"]}
    assert set(hybrid) == {"lstm_hidden", "conv_channels", "epochs", "horizon"}
    assert hybrid["epochs"].choices == (3,) and hybrid["epochs"].target == "trainer"
    assert hybrid["horizon"].target == "data"
    assert hybrid["conv_channels"].choices == ("16,32", "64")
    assert space.tables["lightgbm"] == defaults.tables["lightgbm"]  # tables the file lacks keep the defaults
    params = space.for_family("hybrid_cnn_lstm").suggest(_study().ask())
    assert params.trainer == {"epochs": 3} and params.window in (8, 16, 32, 64)
    assert set(params.data) == {"window", "horizon"}
    make_config("hybrid_cnn_lstm", params.model_options, n_features=22, window=params.window or 8)
    alone = load_search_space(path, merge_defaults=False)
    assert set(alone.tables) == {"hybrid_cnn_lstm"} and alone.families == ("hybrid_cnn_lstm",)


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(SearchSpaceError, match="cannot read the search-space file"):
        load_search_space(tmp_path / "nope.toml")

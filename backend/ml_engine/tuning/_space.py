"""Hyperparameter search spaces: a TOML file, checked against the families, sampled by Optuna.

The file (the bundled defaults are ``search_space.toml`` beside this module, whose comments are the
reference) has one table per model family, a shared ``[common]`` table and an optional ``[search]``
table::

    [common]                                  # every family: data, labels (and trainer fields)
    window = { choices = [30, 60, 90] }
    vol_multiplier = { low = 0.15, high = 0.6 }
    [hybrid_cnn_lstm]
    learning_rate = { low = 1e-4, high = 1e-2, log = true }   # float range, log scale
    lstm_layers = { low = 1, high = 3 }                       # int range (an integer option)
    conv_channels = { choices = [[32], [32, 64]] }            # categorical
    epochs = 30                                               # fixed (a choice of one)
    [search]
    family = { choices = ["hybrid_cnn_lstm", "lightgbm"] }    # optional: the family is sampled first

A name goes to the family's options (:meth:`ModelFamily.options`, target ``model``), else to
:class:`~backend.ml_engine.trainer.TrainerConfig` (``trainer``; networks only), else to the data
(``window`` and the :class:`~backend.ml_engine.labels.LabelConfig` fields; ``data``). A user's file
replaces the bundled tables it has, wholly; the others stay. Bad input is a :class:`SearchSpaceError`
of one line naming the file, the table and the parameter.

Optuna parameter names: a family's own parameters are ``<family>.<name>`` when the family is a choice
(one name never has two distributions in a study), plain otherwise; ``[common]`` ones are plain.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..families import FamilyError, family_names, get_family, make_config

if TYPE_CHECKING:  # pragma: no cover
    import optuna
    from optuna.distributions import BaseDistribution

__all__ = [
    "DEFAULT_SPACE_FILE",
    "Param",
    "SearchSpace",
    "SearchSpaceError",
    "TrialParams",
    "load_search_space",
    "parse_search_space",
]

#: The bundled defaults.
DEFAULT_SPACE_FILE = "search_space.toml"

Kind = Literal["float", "int", "categorical"]
Target = Literal["model", "trainer", "data"]
Scalar = str | int | float | bool

#: TrainerConfig fields that describe where and how a run executes, not what is learned: never searched.
_TRAINER_NOT_SEARCHED = frozenset(
    {"seed", "device", "checkpoint_dir", "log_every_n_steps", "num_threads", "deterministic"}
)
_COMMON = "common"
_SEARCH = "search"
_PARAM_KEYS = frozenset({"low", "high", "log", "type", "choices"})
#: n_features used to check a family's options (the bundled features are 22 columns).
_CHECK_FEATURES = 22
_CHECK_WINDOW = 60


class SearchSpaceError(ValueError):
    """A search space that cannot be used; the message is one line for the user."""


@dataclass(frozen=True)
class Param:
    """One searched parameter: a float or int range, or categorical choices (one choice: a fixed value)."""

    name: str
    kind: Kind
    target: Target
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    choices: tuple[Scalar, ...] | None = None

    def distribution(self) -> BaseDistribution:
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "categorical":
            assert self.choices is not None
            return CategoricalDistribution(self.choices)
        assert self.low is not None and self.high is not None
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(float(self.low), float(self.high), log=self.log)

    def suggest(self, trial: optuna.Trial, key: str) -> Any:
        if self.kind == "categorical":
            assert self.choices is not None
            return trial.suggest_categorical(key, self.choices)
        assert self.low is not None and self.high is not None
        if self.kind == "int":
            return trial.suggest_int(key, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(key, float(self.low), float(self.high), log=self.log)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "target": self.target}
        if self.kind == "categorical":
            d["choices"] = list(self.choices or ())
        else:
            d.update(low=self.low, high=self.high, log=self.log)
        return d


@dataclass(frozen=True)
class TrialParams:
    """What one trial sampled, split by where it goes."""

    family: str
    model_options: dict[str, Any] = field(default_factory=dict)
    """Options for :func:`~backend.ml_engine.families.make_config` (strings such as ``"32,64"`` for
    options that take several integers; ``make_config`` parses them)."""
    trainer: dict[str, Any] = field(default_factory=dict)
    """Overrides of :class:`~backend.ml_engine.trainer.TrainerConfig` fields."""
    data: dict[str, Any] = field(default_factory=dict)
    """``window`` and :class:`~backend.ml_engine.labels.LabelConfig` fields."""
    values: dict[str, Any] = field(default_factory=dict)
    """The trial's parameters under their Optuna names (``family`` included when it is a choice)."""

    @property
    def window(self) -> int | None:
        w = self.data.get("window")
        return None if w is None else int(w)

    @property
    def labels(self) -> dict[str, Any]:
        """The label fields alone (for ``LabelConfig(**labels)``)."""
        return {k: v for k, v in self.data.items() if k != "window"}


@dataclass(frozen=True)
class SearchSpace:
    """Parameters of ``[common]``, of each family's table, and the family choice of ``[search]``."""

    common: tuple[Param, ...] = ()
    tables: Mapping[str, tuple[Param, ...]] = field(default_factory=dict)
    family_choice: tuple[str, ...] | None = None
    """``[search] family``: the families sampled per trial (one: fixed); None: not given."""
    source: str = "search space"

    # ------------------------------------------------------------------ views
    @property
    def families(self) -> tuple[str, ...]:
        """The families a study of this space searches: ``[search]``'s choice, else the tables."""
        if self.family_choice is not None:
            return self.family_choice
        return tuple(self.tables)

    @property
    def family_is_choice(self) -> bool:
        return len(self.families) > 1

    def for_family(self, name: str) -> SearchSpace:
        """This space narrowed to one family: ``[common]`` and that family's table, the family fixed."""
        try:
            key = get_family(name).name
        except FamilyError as exc:
            raise SearchSpaceError(f"{self.source}: {exc}") from None
        return SearchSpace(
            common=self.common,
            tables={key: self.tables.get(key, ())},
            family_choice=None,
            source=self.source,
        )

    def params_of(self, family: str) -> list[tuple[str, Param]]:
        """(Optuna name, parameter) of ``family`` in suggestion order: ``[common]`` then the family's own."""
        own = self.tables.get(family, ())
        own_names = {p.name for p in own}
        tabular = get_family(family).input_kind == "tabular"
        out = [(p.name, p) for p in self.common if p.name not in own_names and not (tabular and p.target == "trainer")]
        prefix = f"{family}." if self.family_is_choice else ""
        out += [(prefix + p.name, p) for p in own]
        return out

    def _single_family(self) -> str:
        fams = self.families
        if len(fams) == 1:
            return fams[0]
        if self.family_choice is None:
            raise SearchSpaceError(
                f"{self.source}: tables for {len(fams)} families ({', '.join(fams)}) and no "
                f"[search] family = {{ choices = [...] }}: pick one with for_family(name) or add the choice"
            )
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ sampling
    def suggest(self, trial: optuna.Trial) -> TrialParams:
        """Sample one trial: the family first when it is a choice, then that family's parameters."""
        if self.family_is_choice and self.family_choice is not None:
            family = str(trial.suggest_categorical("family", self.family_choice))
        else:
            family = self._single_family()
        out = TrialParams(family=family)
        if self.family_is_choice:
            out.values["family"] = family
        for key, p in self.params_of(family):
            value = p.suggest(trial, key)
            out.values[key] = value
            {"model": out.model_options, "trainer": out.trainer, "data": out.data}[p.target][p.name] = value
        return out

    def distributions(self) -> dict[str, BaseDistribution]:
        """Every Optuna name of this space and its distribution (``family`` first when it is a choice)."""
        from optuna.distributions import CategoricalDistribution

        out: dict[str, BaseDistribution] = {}
        if self.family_is_choice:
            out["family"] = CategoricalDistribution(self.families)
        else:
            self._single_family()
        for fam in self.families:
            for key, p in self.params_of(fam):
                out[key] = p.distribution()
        return out

    # ------------------------------------------------------------------ identity
    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON-able form (what :meth:`fingerprint` hashes)."""
        return {
            "common": {p.name: p.to_dict() for p in self.common},
            "families": {fam: {p.name: p.to_dict() for p in self.tables.get(fam, ())} for fam in sorted(self.families)},
            "family": list(self.families),
        }

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON: equal for equal spaces whatever the key order in the file."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------------- loading
def load_search_space(
    path: str | Path | None = None, *, merge_defaults: bool = True, text: str | None = None
) -> SearchSpace:
    """The bundled defaults (``path`` None), or the file at ``path`` (or the TOML ``text``, e.g. from the
    API) laid over them table by table (``merge_defaults=False``: the file alone). Bad input:
    :class:`SearchSpaceError`."""
    defaults_text = resources.files(__package__).joinpath(DEFAULT_SPACE_FILE).read_text(encoding="utf-8")
    defaults = _read_toml(defaults_text, f"<bundled {DEFAULT_SPACE_FILE}>")
    if text is not None:
        return parse_search_space(
            _read_toml(text, "search space"), source="search space", base=defaults if merge_defaults else None
        )
    if path is None:
        return parse_search_space(defaults, source=f"<bundled {DEFAULT_SPACE_FILE}>")
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SearchSpaceError(f"{p}: cannot read the search-space file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SearchSpaceError(f"{p}: not a UTF-8 text file") from None
    user = _read_toml(text, str(p))
    return parse_search_space(user, source=str(p), base=defaults if merge_defaults else None)


def _read_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SearchSpaceError(f"{source}: not valid TOML: {exc}") from None


def parse_search_space(
    data: Mapping[str, Any], *, source: str = "search space", base: Mapping[str, Any] | None = None
) -> SearchSpace:
    """A :class:`SearchSpace` of parsed TOML tables; ``base``'s tables stay where ``data`` lacks them."""
    known = family_names()
    for key, value in data.items():
        if not isinstance(value, Mapping):
            raise SearchSpaceError(
                f"{source}: top-level key {key!r}: parameters go in a table: [common], [search] or a family "
                f"([{'], ['.join(known)}])"
            )
        if key not in (_COMMON, _SEARCH) and key not in known:
            raise SearchSpaceError(
                f"{source}: unknown table [{key}]: expected [common], [search] or a family: {', '.join(known)}"
            )
    merged: dict[str, Mapping[str, Any]] = dict(base or {})
    merged.update(data)
    user_tables = set(data)

    def where(table: str) -> str:
        return source if table in user_tables or base is None else f"<bundled {DEFAULT_SPACE_FILE}>"

    common = tuple(
        _parse_param(where(_COMMON), _COMMON, None, name, spec) for name, spec in merged.get(_COMMON, {}).items()
    )
    tables: dict[str, tuple[Param, ...]] = {}
    for fam in known:
        if fam in merged:
            tables[fam] = tuple(_parse_param(where(fam), fam, fam, n, s) for n, s in merged[fam].items())
    family_choice = _parse_search(where(_SEARCH), merged.get(_SEARCH))
    return SearchSpace(common=common, tables=tables, family_choice=family_choice, source=source)


def _parse_search(source: str, table: Mapping[str, Any] | None) -> tuple[str, ...] | None:
    if table is None:
        return None
    unknown = sorted(set(table) - {"family"})
    if unknown:
        raise SearchSpaceError(f"{source}: [search] {unknown[0]}: unknown key; [search] takes only family")
    if "family" not in table:
        return None
    spec = table["family"]
    if isinstance(spec, str):
        names: list[Any] = [spec]
    elif isinstance(spec, Mapping) and set(spec) == {"choices"} and isinstance(spec["choices"], list):
        names = list(spec["choices"])
    else:
        raise SearchSpaceError(
            f'{source}: [search] family: expected family = "name" or family = {{ choices = ["a", "b"] }}'
        )
    if not names:
        raise SearchSpaceError(f"{source}: [search] family: empty choices")
    out: list[str] = []
    for n in names:
        try:
            key = get_family(str(n)).name
        except FamilyError as exc:
            raise SearchSpaceError(f"{source}: [search] family: {exc}") from None
        if key in out:
            raise SearchSpaceError(f"{source}: [search] family: {key} is listed twice")
        out.append(key)
    return tuple(out)


# ---------------------------------------------------------------------- one parameter
@dataclass(frozen=True)
class _Field:
    target: Target
    kind: Literal["int", "float", "str", "bool", "ints"]


def _trainer_fields() -> dict[str, _Field]:
    from ..trainer import TrainerConfig

    out: dict[str, _Field] = {}
    for f in dataclasses.fields(TrainerConfig):
        if f.name in _TRAINER_NOT_SEARCHED or f.default is dataclasses.MISSING:
            continue
        out[f.name] = _Field("trainer", _kind_of_default(f.default))
    return out


def _data_fields() -> dict[str, _Field]:
    from ..labels import LabelConfig

    out = {"window": _Field("data", "int")}
    for f in dataclasses.fields(LabelConfig):
        out[f.name] = _Field("data", _kind_of_default(f.default))
    return out


def _kind_of_default(value: Any) -> Literal["int", "float", "str", "bool"]:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "str"


def _option_owners(name: str) -> list[str]:
    return [fam for fam in family_names() if any(o.name == name for o in get_family(fam).options())]


def _resolve(source: str, table: str, family: str | None, name: str) -> _Field:
    """Where ``name`` under ``[table]`` goes (one-line errors name what is allowed)."""
    trainer = _trainer_fields()
    data = _data_fields()
    at = f"{source}: [{table}] {name}"
    if family is not None:
        fam = get_family(family)
        options = {o.name: o for o in fam.options()}
        if name in options:
            return _Field("model", options[name].kind)
        networks = fam.input_kind == "window"
        if name in trainer and networks:
            return trainer[name]
        if name in data:
            return data[name]
        if name in trainer:
            raise SearchSpaceError(
                f"{at}: {family} does not train with the Trainer, so the trainer field {name} has no effect "
                f"there (options of {family}: {', '.join(sorted(options))}; data: {', '.join(data)})"
            )
        owners = [f for f in _option_owners(name) if f != family]
        if owners:
            raise SearchSpaceError(
                f"{at}: an option of {' and '.join(owners)}, not of {family}: put it under [{owners[0]}]"
            )
        allowed = f"options of {family}: {', '.join(sorted(options))}"
        if networks:
            allowed += f"; trainer: {', '.join(sorted(trainer))}"
        raise SearchSpaceError(f"{at}: unknown parameter ({allowed}; data: {', '.join(data)})")
    if name in data:
        return data[name]
    if name in trainer:
        return trainer[name]
    owners = _option_owners(name)
    if owners:
        raise SearchSpaceError(
            f"{at}: an option of {' and '.join(owners)}; [common] takes data and trainer fields only: "
            f"put it under [{owners[0]}]"
        )
    raise SearchSpaceError(
        f"{at}: unknown parameter (data: {', '.join(data)}; trainer: {', '.join(sorted(trainer))}; "
        "a family's options go under its table)"
    )


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _parse_param(source: str, table: str, family: str | None, name: str, spec: Any) -> Param:
    at = f"{source}: [{table}] {name}"
    target = _resolve(source, table, family, name)
    if not isinstance(spec, Mapping):
        spec = {"choices": [spec]}  # a fixed value
    unknown = sorted(set(spec) - _PARAM_KEYS)
    if unknown:
        raise SearchSpaceError(f"{at}: unknown key {unknown[0]!r} (a parameter takes low, high, log, type or choices)")
    if "choices" in spec:
        extra = sorted(set(spec) - {"choices"})
        if extra:
            raise SearchSpaceError(f"{at}: choices cannot be combined with {', '.join(extra)}")
        param = Param(name, "categorical", target.target, choices=_choices(at, target, spec["choices"]))
    else:
        param = _range(at, target, name, spec)
    _check_values(at, family, name, param)
    return param


def _choices(at: str, target: _Field, raw: Any) -> tuple[Scalar, ...]:
    if not isinstance(raw, list):
        raise SearchSpaceError(f"{at}: choices must be a list")
    if not raw:
        raise SearchSpaceError(f"{at}: empty choices")
    out: list[Scalar] = []
    for c in raw:
        if isinstance(c, list) and target.kind == "ints":
            if not c or not all(isinstance(v, int) and not isinstance(v, bool) for v in c):
                raise SearchSpaceError(f"{at}: choice {c!r}: expected a non-empty list of integers")
            out.append(",".join(str(v) for v in c))
        elif isinstance(c, (str, int, float, bool)):
            if isinstance(c, float) and not math.isfinite(c):
                raise SearchSpaceError(f"{at}: choice {c!r} is not a finite number")
            if target.kind == "ints" and isinstance(c, int) and not isinstance(c, bool):
                out.append(str(c))  # one integer: the option takes "32" as (32,)
            else:
                out.append(c)
        else:
            raise SearchSpaceError(f"{at}: choice {c!r}: expected a number, a string or true/false")
    if len(set(map(repr, out))) != len(out):
        raise SearchSpaceError(f"{at}: a choice is listed twice in {raw!r}")
    return tuple(out)


def _range(at: str, target: _Field, name: str, spec: Mapping[str, Any]) -> Param:
    if "low" not in spec or "high" not in spec:
        raise SearchSpaceError(f"{at}: a range needs both low and high (or give choices = [...])")
    low, high, log = spec["low"], spec["high"], spec.get("log", False)
    if not isinstance(log, bool):
        raise SearchSpaceError(f"{at}: log must be true or false")
    if target.kind not in ("int", "float"):
        raise SearchSpaceError(f"{at}: a {target.kind} parameter takes choices = [...], not a range")
    kind: Literal["int", "float"] = target.kind
    declared = spec.get("type")
    if declared is not None and declared not in ("int", "float"):
        raise SearchSpaceError(f'{at}: type must be "int" or "float", got {declared!r}')
    if declared is not None and declared != kind:
        raise SearchSpaceError(
            f'{at}: {name} is {"an integer" if kind == "int" else "a float"}; type = "{declared}" does not fit'
        )
    if not (_is_number(low) and _is_number(high)):
        raise SearchSpaceError(f"{at}: low and high must be numbers, got {low!r} and {high!r}")
    if not (math.isfinite(low) and math.isfinite(high)):
        raise SearchSpaceError(f"{at}: low and high must be finite, got {low!r} and {high!r}")
    if kind == "int" and not (isinstance(low, int) and isinstance(high, int)):
        raise SearchSpaceError(f"{at}: an int range needs integer bounds, got low = {low!r}, high = {high!r}")
    if low >= high:
        raise SearchSpaceError(
            f"{at}: empty or inverted range: low = {low!r} must be below high = {high!r} "
            f"(a fixed value is written {name} = {low!r})"
        )
    if log and low <= 0:
        raise SearchSpaceError(f"{at}: a log-scale range needs low > 0, got low = {low!r}")
    if kind == "int":
        return Param(name, "int", target.target, low=int(low), high=int(high), log=log)
    return Param(name, "float", target.target, low=float(low), high=float(high), log=log)


def _check_values(at: str, family: str | None, name: str, param: Param) -> None:
    """Every bound and choice must be a value the family, the trainer or the labels accept."""
    values: Sequence[Any] = param.choices if param.choices is not None else (param.low, param.high)
    for v in values:
        try:
            if param.target == "model":
                assert family is not None
                make_config(family, {name: v}, n_features=_CHECK_FEATURES, window=_CHECK_WINDOW)
            elif param.target == "trainer":
                from ..trainer import TrainerConfig

                TrainerConfig(**{name: v})
            elif name == "window":
                if not isinstance(v, int) or isinstance(v, bool) or v < 2:
                    raise ValueError(f"window must be an int >= 2, got {v!r}")
            else:
                from ..labels import LabelConfig

                LabelConfig(**{name: v})
        except FamilyError as exc:
            raise SearchSpaceError(f"{at}: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise SearchSpaceError(f"{at}: value {v!r}: {exc}") from None

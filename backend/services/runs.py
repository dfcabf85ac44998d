"""Experiments and runs: list experiments with their descriptions, search runs page by page,
read one run with metric histories and artifacts.

    service = RunService(ServiceSettings())
    page = service.search_runs(["model_training"], "metrics.val_accuracy > 0.7",
                               order_by=["metrics.val_f1 DESC"], max_results=10)
    more = service.search_runs(["model_training"], "metrics.val_accuracy > 0.7", page_token=page.next_page_token)

Reads only: nothing here creates an experiment. A filter MLflow cannot parse raises
:class:`FilterError` (an :class:`~backend.services.errors.InvalidRequestError`) with MLflow's own
message, a hint and a structured :class:`FilterHint` (``code``, the key, the prefix it lacks, the
corrected filter) that front ends render in their own language::

    try:
        service.search_runs(["model_training"], "val_accuracy > 0.3")
    except FilterError as exc:
        exc.hint.code, exc.hint.prefix, exc.hint.fix   # 'missing_prefix', 'metrics', 'metrics.val_accuracy > 0.3'

:meth:`RunService.filter_examples` runs the guide's filters on the store and, where a literal threshold
or value matches no run (a tiny training has neither 50 epochs nor accuracy 0.85), a variant with the
values of a run that carries the same names; :meth:`RunService.unknown_filter_keys` names the keys of
a filter that no run of the experiments carries.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ._mlflow import ensure_store_reachable, make_client, ms_to_dt, translate_errors
from .errors import InvalidRequestError, NotFoundError, ServiceError
from .redaction import mask_uri, redact, redact_mapping
from .schemas import (
    ArtifactPublic,
    DatasetInputPublic,
    ExperimentPublic,
    ExperimentsPublic,
    MetricPoint,
    RunDetailPublic,
    RunPublic,
    RunsPublic,
    json_safe,
)
from .settings import ServiceSettings

if TYPE_CHECKING:  # pragma: no cover
    from mlflow import MlflowClient
    from mlflow.entities import Experiment, Run

__all__ = [
    "FilterError",
    "FilterExample",
    "FilterHint",
    "RunService",
    "diagnose_filter",
    "filter_variant",
    "presence_filter",
]

logger = logging.getLogger(__name__)

NOTE_TAG = "mlflow.note.content"
#: Largest page the API hands out (MLflow's SQL store allows 50,000; a page is loaded whole).
MAX_RESULTS_LIMIT = 1000
#: How long an experiment name's id is remembered (an experiment deleted and re-created under the
#: same name is found again after this many seconds).
EXPERIMENT_CACHE_TTL_S = 30.0
#: MLflow page tokens are base64 (standard or URL-safe alphabet).
PAGE_TOKEN_PATTERN = r"^[A-Za-z0-9+/=_\-]{1,4096}$"
_PAGE_TOKEN_RE = re.compile(PAGE_TOKEN_PATTERN)


def _downsample(points: list[Any], limit: int) -> list[Any]:
    """At most ``limit`` points, evenly spaced, first and last kept."""
    if limit <= 0 or len(points) <= limit:
        return points
    if limit == 1:
        return [points[-1]]
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


def _check_page_token(token: str) -> None:
    """MLflow's tokens are base64 of a JSON object (``{"offset": 50}``); MLflow itself answers some
    malformed ones with an internal error, so they are refused here first."""
    import base64
    import binascii
    import json

    message = "invalid page_token: pass the next_page_token of a previous page unchanged"
    if not _PAGE_TOKEN_RE.match(token):
        raise InvalidRequestError(message)
    try:
        decoded = json.loads(base64.b64decode(token.encode("ascii"), validate=False))
    except (binascii.Error, ValueError):
        raise InvalidRequestError(message) from None
    if not isinstance(decoded, dict):
        raise InvalidRequestError(message)
    offset = decoded.get("offset")
    if offset is not None and not (
        (isinstance(offset, int) and not isinstance(offset, bool) and offset >= 0)
        or (isinstance(offset, str) and offset.isdigit())
    ):
        raise InvalidRequestError(message)


# -- filters: MLflow's parser errors as a hint with the fix; the guide's examples on this store -------

#: Where a key may live, in the order a bare key is looked up (MLflow's own prefixes).
FILTER_PREFIXES: tuple[str, ...] = ("metrics", "params", "tags")
#: Run attributes MLflow filters on (``attributes.<name>``).
FILTER_ATTRIBUTES: tuple[str, ...] = (
    "run_name",
    "status",
    "start_time",
    "end_time",
    "run_id",
    "artifact_uri",
    "user_id",
)
#: Tags the project sets on runs: a bare one of these compared with a quoted value is a tag, not a param.
RUN_TAGS = frozenset(
    {
        "training_mode",
        "trigger",
        "model_name",
        "model_family",
        "run_kind",
        "symbol",
        "timeframe",
        "code_version",
        "fold",
        "drift_detected",
        "performance_drop",
    }
)
#: MLflow's comparators, in the order a hint lists them.
_COMPARATORS = ("=", "!=", ">", ">=", "<", "<=", "LIKE", "ILIKE", "IS NULL", "IS NOT NULL", "IN", "NOT IN")
_PREFIX_OF_TYPE = {"metric": "metrics", "parameter": "params", "tag": "tags", "attribute": "attributes"}
_ENTITY = r"(?:metrics?|params?|parameters?|tags?|attributes?|attr|run)"
_KEY = r"(?:`[^`]+`|[\w.\-]+)"
_OP = r"(?:!=|>=|<=|=|<|>|(?i:NOT\s+IN|IN|ILIKE|LIKE|IS\s+NOT|IS))"
_VALUE = r"""(?:'[^']*'|"[^"]*"|[^\s()]+)"""
#: How many corrections in a row :func:`diagnose_filter` applies (one bare key each).
_MAX_FIXES = 8


@dataclass(frozen=True)
class FilterHint:
    """What is wrong with a filter, as data each front end renders in its own language.

    ``code``: ``missing_prefix`` (the bare ``key`` lacks ``prefix.``), ``quote_value`` (the value of a
    param or tag is not quoted), ``number_expected`` (a metric compared with text or a quoted number),
    ``comparator`` (operator ``value`` is not one of ``allowed`` for ``prefix.key``), ``no_or`` (MLflow
    filters have no OR), ``attribute`` (``attributes.key`` does not exist; ``allowed`` lists those that
    do), ``clause`` (the condition ``value`` was not parsed), ``other`` (nothing to add to MLflow's
    message). ``fix``: the filter corrected where the correction is certain and parses, else None.
    """

    code: str
    key: str = ""
    prefix: str = ""
    value: str = ""
    allowed: str = ""
    fix: str | None = None

    def english(self) -> str:
        """The hint in one English sentence (the REST API's message carries it after MLflow's)."""
        text = {
            "missing_prefix": f"a key needs its kind: add the prefix {self.prefix}. ({self.prefix}.{self.key})",
            "quote_value": "param and tag values are strings: put them in single quotes",
            "number_expected": "metric values are numbers: write them without quotes",
            "comparator": f"{self.prefix}.{self.key} takes one of {self.allowed}".replace(".. ", " "),
            "no_or": "MLflow filters have no OR: join conditions with AND, or search twice",
            "attribute": f"run attributes are {self.allowed}",
            "clause": "each condition is <metrics|params|tags|attributes>.<name> <operator> <value>, joined by AND",
        }.get(self.code, "")
        if text and self.fix:
            text += f"; corrected: {self.fix}"
        return text


class FilterError(InvalidRequestError):
    """A filter MLflow refused: ``str()`` is MLflow's message and an English hint; ``hint`` is the
    :class:`FilterHint`, ``mlflow_message`` MLflow's message alone."""

    def __init__(self, mlflow_message: str, hint: FilterHint) -> None:
        english = hint.english()
        super().__init__(f"{mlflow_message} (hint: {english})" if english else mlflow_message)
        self.mlflow_message = mlflow_message
        self.hint = hint


def _conditions(filter_string: str) -> list[dict[str, Any]]:
    """MLflow's parse of a filter: one dict per condition (``type``, ``key``, ``comparator``, ``value``)."""
    from mlflow.utils.search_utils import SearchUtils

    return list(SearchUtils.parse_search_filter(filter_string))


def _parse_error(filter_string: str) -> str | None:
    """MLflow's parser message for ``filter_string`` (no store involved), None when it parses."""
    try:
        _conditions(filter_string)
    except Exception as exc:  # noqa: BLE001 - MlflowException or a sqlparse error: both mean "does not parse"
        return str(getattr(exc, "message", None) or exc)
    return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _guess_prefix(key: str, value: str, known: Mapping[str, Any] | None) -> str:
    """The prefix a bare ``key`` compared with ``value`` needs: where the store's runs carry the key,
    else by the value (a bare number: a metric; a quoted string: a param, or a tag the project sets)."""
    numeric = _is_number(value)
    holders = [p for p in FILTER_PREFIXES if known and key in known.get(p, ())]
    if holders:
        if numeric and "metrics" in holders:
            return "metrics"
        strings = [p for p in holders if p != "metrics"]
        return strings[0] if strings and not numeric else holders[0]
    if numeric:
        return "metrics"
    return "tags" if key in RUN_TAGS else "params"


def _diagnose_once(filter_string: str, message: str, known: Mapping[str, Any] | None) -> FilterHint:
    m = re.search(r"Invalid attribute key '([^']*)'", message)
    if m:
        key = m.group(1)
        if re.search(rf"(?i)\b(?:attributes?|attr|run)\.`?{re.escape(key)}", filter_string):
            return FilterHint("attribute", key=key, prefix="attributes", allowed=", ".join(FILTER_ATTRIBUTES))
        bare = re.compile(rf"(?<![\w.`'\"]){re.escape(key)}(?=\s*{_OP}\s*(?P<value>{_VALUE}))")
        found = bare.search(filter_string)
        value = found.group("value") if found else ""
        prefix = _guess_prefix(key, value, known)
        fix = bare.sub(f"{prefix}.{key}", filter_string, count=1) if found else None
        return FilterHint("missing_prefix", key=key, prefix=prefix, value=value, fix=fix)
    m = re.search(r"Got value (.+)$", message) or re.search(r"for string value (.+?)\. Use either", message)
    if m or "quoted" in message:
        value = m.group(1).strip() if m else ""
        clause = re.compile(
            rf"(?P<head>(?P<entity>{_ENTITY})\.(?P<key>{_KEY})\s*(?:!=|=|(?i:ILIKE|LIKE))\s*)"
            rf"(?P<value>{re.escape(value) if value else _VALUE})(?![\w.\-])"
        )
        found = next((c for c in clause.finditer(filter_string) if c.group("value")[:1] not in "'\""), None)
        if found is None:
            return FilterHint("quote_value", value=value)
        fix = filter_string[: found.start("value")] + f"'{found.group('value')}'" + filter_string[found.end("value") :]
        prefix = "tags" if found.group("entity").lower().startswith("tag") else "params"
        return FilterHint("quote_value", key=found.group("key"), prefix=prefix, value=found.group("value"), fix=fix)
    m = re.search(r"Expected numeric value type for metric\. Found (.+)$", message)
    if m:
        value = m.group(1).strip()
        clause = re.compile(rf"(?P<entity>metrics?)\.(?P<key>{_KEY})\s*{_OP}\s*(?P<value>{re.escape(value)})")
        found = clause.search(filter_string)
        inner = value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"" else None
        fix = None
        if found and inner is not None and _is_number(inner):
            fix = filter_string[: found.start("value")] + inner + filter_string[found.end("value") :]
        return FilterHint(
            "number_expected", key=found.group("key") if found else "", prefix="metrics", value=value, fix=fix
        )
    m = re.search(r"Invalid comparator '([^']*)' not one of '?\{([^}]*)\}", message)
    if m:
        op = m.group(1)
        offered = set(re.findall(r"'([^']*)'", m.group(2)))
        allowed = ", ".join(c for c in _COMPARATORS if c in offered) or m.group(2)
        found = re.search(rf"(?P<entity>{_ENTITY})\.(?P<key>{_KEY})\s*{re.escape(op)}", filter_string)
        entity = found.group("entity").lower() if found else ""
        prefix = next((p for p in (*FILTER_PREFIXES, "attributes") if p.startswith(entity[:3])), "") if entity else ""
        return FilterHint(
            "comparator", key=found.group("key") if found else "", prefix=prefix, value=op, allowed=allowed
        )
    m = re.search(r"Invalid clause\(s\) in filter string: (.+)$", message)
    if m:
        if re.search(r"(?i)(?<![\w'\"])OR(?![\w'\"])", filter_string):
            return FilterHint("no_or", value="OR")
        return FilterHint("clause", value=m.group(1).strip())
    return FilterHint("other")


def diagnose_filter(filter_string: str, message: str, known: Mapping[str, Any] | None = None) -> FilterHint:
    """What MLflow's ``message`` about ``filter_string`` means and how to fix it (:class:`FilterHint`).

    ``known``: the keys the store's runs carry, ``{"metrics": {...}, "params": {...}, "tags": {...}}``,
    so that a bare key gets the prefix it has there. Corrections are applied one after another (every
    bare key of ``val_accuracy > 0.3 AND trainer_epochs = '3'``); ``fix`` is given only when the corrected
    filter parses.
    """
    hint = _diagnose_once(filter_string, message, known)
    fix = hint.fix
    for _ in range(_MAX_FIXES):
        if fix is None:
            break
        error = _parse_error(fix)
        if error is None:
            return replace(hint, fix=fix)
        fix = _diagnose_once(fix, error, known).fix
    return replace(hint, fix=None)


@dataclass(frozen=True)
class FilterExample:
    """One of the guide's filters on this store: how many runs it finds as written and, when none, a
    variant with the same names and the values of a run here (its experiment names too)."""

    guide: str
    found: int
    experiments: tuple[str, ...]
    """The experiments of the runs found (by the guide's filter, else by the variant)."""
    variant: str | None = None
    variant_found: int = 0

    @property
    def working(self) -> str | None:
        """The filter that finds runs here: the guide's own, else the variant (None: neither does)."""
        if self.found:
            return self.guide
        return self.variant if self.variant_found else None


def _quote_key(key: str) -> str:
    return key if re.fullmatch(r"[\w.]+", key) else f"`{key}`"


def _variant_value(kind: str, comparator: str, actual: Any) -> str | None:
    """A value for which ``actual`` satisfies ``<comparator> value`` (two decimals for metrics)."""
    if kind == "metric":
        if actual is None or not math.isfinite(float(actual)):
            return None
        x = float(actual)
        if comparator in (">", ">="):
            v = math.floor(x * 100) / 100
            if comparator == ">" and not v < x:
                v -= 0.01
        elif comparator in ("<", "<="):
            v = math.ceil(x * 100) / 100
            if comparator == "<" and not v > x:
                v += 0.01
        else:
            return None
        return f"{v:.2f}"
    if comparator != "=" or actual is None or "'" in str(actual):
        return None
    return f"'{actual}'"


def _satisfies(kind: str, comparator: str, actual: Any, value: str) -> bool:
    if actual is None:
        return False
    if kind == "metric":
        x, v = float(actual), float(value)
        return {">": x > v, ">=": x >= v, "<": x < v, "<=": x <= v, "=": x == v, "!=": x != v}.get(comparator, False)
    return {"=": str(actual) == value, "!=": str(actual) != value}.get(comparator, False)


def _presence(cond: Mapping[str, Any]) -> str | None:
    """A condition true of every run that carries the name of parsed condition ``cond`` (None: an
    attribute or a dataset, which every run has or none)."""
    prefix = _PREFIX_OF_TYPE.get(cond["type"])
    if prefix not in FILTER_PREFIXES:
        return None
    name = f"{prefix}.{_quote_key(cond['key'])}"
    return f"{name} >= -1e308" if prefix == "metrics" else f"{name} IS NOT NULL"


def presence_filter(filter_string: str) -> str | None:
    """A filter matching the runs that carry every metric, param and tag name of ``filter_string``,
    whatever their values (``metrics.accuracy >= -1e308 AND params.trainer_epochs IS NOT NULL``); None
    when it names none or does not parse."""
    try:
        conds = _conditions(filter_string)
    except Exception:  # noqa: BLE001 - MlflowException or sqlparse's: not a filter
        return None
    parts = list(dict.fromkeys(p for p in (_presence(c) for c in conds) if p))
    return " AND ".join(parts) or None


def filter_variant(filter_string: str, runs: Sequence[RunPublic]) -> str | None:
    """``filter_string`` with the values of the first of ``runs`` that carries all its metric, param and
    tag names, so that the variant finds that run: a threshold moves to the run's value rounded to two
    decimals (``metrics.accuracy > 0.85`` -> ``metrics.accuracy > 0.43``), an equality takes the run's
    value; conditions the run already meets stay as written. None: no run carries the names, or a
    condition has no such rewrite (LIKE, IS NULL, attributes)."""
    try:
        conds = _conditions(filter_string)
    except Exception:  # noqa: BLE001 - MlflowException or sqlparse's: not a filter, no variant
        return None
    if not conds or any(c["type"] not in ("metric", "parameter", "tag") for c in conds):
        return None
    fields = {"metric": "metrics", "parameter": "params", "tag": "tags"}
    for run in runs:
        values = [getattr(run, fields[c["type"]]).get(c["key"]) for c in conds]
        if any(v is None for v in values):
            continue
        clauses = []
        for c, actual in zip(conds, values):
            prefix = _PREFIX_OF_TYPE[c["type"]]
            if _satisfies(c["type"], c["comparator"], actual, c["value"]):
                value = c["value"] if c["type"] == "metric" else f"'{c['value']}'"
            else:
                value = _variant_value(c["type"], c["comparator"], actual)
                if value is None:
                    break
            clauses.append(f"{prefix}.{_quote_key(c['key'])} {c['comparator']} {value}")
        else:
            return " AND ".join(clauses)
    return None


class RunService:
    """Read-only access to experiments and runs for front ends."""

    def __init__(self, settings: ServiceSettings, client: MlflowClient | None = None) -> None:
        self.settings = settings
        self._client = client
        self._guard = threading.Lock()
        self._secrets = settings.secrets()
        #: experiment name or id -> (id, monotonic expiry): one query less per search
        self._experiment_ids: dict[str, tuple[str, float]] = {}
        self._inflight: dict[tuple[Any, ...], Future[RunsPublic]] = {}
        self._inflight_guard = threading.Lock()

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            with self._guard:
                if self._client is None:
                    self._client = make_client(self.settings.mlflow_tracking_uri)
        return self._client

    def _errors(self) -> Any:
        ensure_store_reachable(self.settings.mlflow_tracking_uri)
        return translate_errors(self._secrets, "MLflow tracking")

    # -- experiments -----------------------------------------------------------------------

    def list_experiments(self, include_deleted: bool = False) -> ExperimentsPublic:
        """Every experiment with its description (the ``mlflow.note.content`` tag)."""
        from mlflow.entities import ViewType

        view = ViewType.ALL if include_deleted else ViewType.ACTIVE_ONLY
        out: list[ExperimentPublic] = []
        token: str | None = None
        with self._errors():
            while True:
                page = self.client.search_experiments(
                    view_type=view, max_results=1000, page_token=token, order_by=["name ASC"]
                )
                out.extend(self._experiment_public(e) for e in page)
                token = page.token
                if not token:
                    break
        return ExperimentsPublic(data=out, count=len(out))

    def _experiment_public(self, exp: Experiment) -> ExperimentPublic:
        tags = dict(exp.tags or {})
        return ExperimentPublic(
            experiment_id=str(exp.experiment_id),
            name=exp.name,
            description=tags.get(NOTE_TAG) or None,
            lifecycle_stage=exp.lifecycle_stage,
            artifact_location=redact(mask_uri(exp.artifact_location), self._secrets) if exp.artifact_location else None,
            tags=redact_mapping(tags, self._secrets),
            created_at=ms_to_dt(getattr(exp, "creation_time", None)),
            updated_at=ms_to_dt(getattr(exp, "last_update_time", None)),
        )

    def resolve_experiment_ids(self, experiments: Sequence[str] | None) -> list[str]:
        """Experiment ids for names or ids; all active experiments when none are given."""
        from mlflow.entities import ViewType
        from mlflow.exceptions import MlflowException

        with self._errors():
            if not experiments:
                ids: list[str] = []
                token: str | None = None
                while True:
                    page = self.client.search_experiments(
                        view_type=ViewType.ACTIVE_ONLY, max_results=1000, page_token=token
                    )
                    ids.extend(str(e.experiment_id) for e in page)
                    token = page.token
                    if not token:
                        return ids
            ids = []
            now = time.monotonic()
            for ref in experiments:
                cached = self._experiment_ids.get(ref)
                if cached is not None and cached[1] > now:
                    ids.append(cached[0])
                    continue
                exp = None
                if ref.isdigit():
                    try:
                        exp = self.client.get_experiment(ref)
                    except MlflowException as exc:
                        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                            raise
                if exp is None:
                    exp = self.client.get_experiment_by_name(ref)
                if exp is None or exp.lifecycle_stage != "active":
                    raise NotFoundError(f"experiment {ref!r} not found (give its name or id)")
                ids.append(str(exp.experiment_id))
                self._experiment_ids[ref] = (str(exp.experiment_id), now + EXPERIMENT_CACHE_TTL_S)
            return ids

    # -- runs ------------------------------------------------------------------------------

    def _run_public(self, run: Run) -> dict[str, Any]:
        info = run.info
        return {
            "run_id": info.run_id,
            "run_name": info.run_name,
            "experiment_id": str(info.experiment_id),
            "status": info.status,
            "start_time": ms_to_dt(info.start_time),
            "end_time": ms_to_dt(info.end_time),
            "lifecycle_stage": info.lifecycle_stage,
            "artifact_uri": redact(mask_uri(info.artifact_uri), self._secrets) if info.artifact_uri else None,
            "metrics": json_safe(dict(run.data.metrics)),
            "params": redact_mapping(run.data.params, self._secrets),
            "tags": redact_mapping(run.data.tags, self._secrets),
        }

    def search_runs(
        self,
        experiments: Sequence[str] | None = None,
        filter_string: str = "",
        order_by: Sequence[str] | None = None,
        max_results: int = 50,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> RunsPublic:
        """One page of runs matching an MLflow filter (``metrics.val_accuracy > 0.7 AND
        params.trainer_epochs = '50'``), in ``experiments`` (names or ids; default: all)."""
        from mlflow.entities import ViewType

        if not 1 <= max_results <= MAX_RESULTS_LIMIT:
            raise InvalidRequestError(f"max_results must be between 1 and {MAX_RESULTS_LIMIT}")
        if page_token:
            _check_page_token(page_token)
        ids = self.resolve_experiment_ids(experiments)
        if not ids:
            return RunsPublic(data=[], count=0, next_page_token=None)

        def search() -> RunsPublic:
            try:
                with self._errors():
                    found = self.client.search_runs(
                        experiment_ids=ids,
                        filter_string=filter_string or "",
                        run_view_type=ViewType.ALL if include_deleted else ViewType.ACTIVE_ONLY,
                        max_results=max_results,
                        order_by=list(order_by) if order_by else None,
                        page_token=page_token or None,
                    )
            except InvalidRequestError as exc:
                if filter_string and filter_string.strip():
                    self._raise_filter_error(ids, filter_string, exc)
                raise
            data = [RunPublic.model_validate(self._run_public(r)) for r in found]
            return RunsPublic(data=data, count=len(data), next_page_token=found.token or None)

        if not self.settings.coalesce_run_searches:
            return search()
        key = (tuple(ids), filter_string or "", tuple(order_by or ()), max_results, page_token or "", include_deleted)
        return self._single_flight(key, search)

    def _raise_filter_error(self, ids: list[str], filter_string: str, exc: InvalidRequestError) -> None:
        """Raise :class:`FilterError` for a refused filter (nothing when the message is not about it)."""
        message = str(exc)
        try:
            hint = diagnose_filter(filter_string, message)
        except Exception:  # a hint is a courtesy: MLflow's own message stands without one
            logger.warning("no hint for the refused filter %r", filter_string, exc_info=True)
            return
        if hint.code == "other":
            return
        if hint.code == "missing_prefix":  # the prefix the key has on this store's runs
            with contextlib.suppress(ServiceError):
                hint = diagnose_filter(filter_string, message, self._known_keys(ids))
        raise FilterError(message, hint) from None

    def _known_keys(self, ids: list[str], sample: int = 200) -> dict[str, set[str]]:
        """The metric, param and tag names of the latest ``sample`` runs of experiments ``ids``."""
        runs = self._search_ids(ids, "", sample)
        return {
            "metrics": {k for r in runs for k in r.metrics},
            "params": {k for r in runs for k in r.params},
            "tags": {k for r in runs for k in r.tags},
        }

    def _search_ids(self, ids: list[str], filter_string: str, max_results: int) -> list[RunPublic]:
        """The latest active runs of experiments ``ids`` matching ``filter_string`` (one page)."""
        from mlflow.entities import ViewType

        if not ids:
            return []
        with self._errors():
            found = self.client.search_runs(
                experiment_ids=ids,
                filter_string=filter_string,
                run_view_type=ViewType.ACTIVE_ONLY,
                max_results=max_results,
                order_by=["attributes.start_time DESC"],
            )
        return [RunPublic.model_validate(self._run_public(r)) for r in found]

    def unknown_filter_keys(self, experiments: Sequence[str] | None, filter_string: str) -> list[str]:
        """The ``metrics.``/``params.``/``tags.`` names of a (valid) filter that no active run of
        ``experiments`` carries: why a filter that parses finds nothing (``metrics.accuracy`` asked of
        runs that log only ``test_accuracy``). One query per name, one run each."""
        try:
            conds = _conditions(filter_string)
        except Exception:  # noqa: BLE001 - a filter that does not parse has its own message
            return []
        ids = self.resolve_experiment_ids(experiments)
        missing: list[str] = []
        for c in conds:
            probe = _presence(c)
            name = probe.split(" ", 1)[0] if probe else ""
            if probe and name not in missing and not self._search_ids(ids, probe, 1):
                missing.append(name)
        return missing

    def filter_examples(
        self, filters: Sequence[str], experiments: Sequence[str] | None = None, limit: int = 25
    ) -> list[FilterExample]:
        """Each of ``filters`` (the guide's) run on the store as written and, when it finds nothing, as
        :func:`filter_variant` of the latest run that carries all its names: how many runs each finds (at
        most ``limit``) and in which experiments. At most three searches per filter."""
        ids = self.resolve_experiment_ids(experiments)
        names = {e.experiment_id: e.name for e in self.list_experiments().data}

        def where(runs: list[RunPublic]) -> tuple[str, ...]:
            return tuple(dict.fromkeys(names.get(r.experiment_id, r.experiment_id) for r in runs))

        out: list[FilterExample] = []
        for guide in filters:
            found = self._search_ids(ids, guide, limit)
            if found:
                out.append(FilterExample(guide, len(found), where(found)))
                continue
            probe = presence_filter(guide)
            carriers = self._search_ids(ids, probe, 1) if probe else []
            variant = filter_variant(guide, carriers)
            by_variant = self._search_ids(ids, variant, limit) if variant else []
            out.append(FilterExample(guide, 0, where(by_variant), variant, len(by_variant)))
        return out

    def _single_flight(self, key: tuple[Any, ...], compute: Callable[[], RunsPublic]) -> RunsPublic:
        """Identical searches in flight at the same moment share one query: a dashboard polled by
        many people, or a burst of retries, costs the database one search. The answer is never
        older than the query that was already running when the request came in (no cache)."""
        with self._inflight_guard:
            future = self._inflight.get(key)
            leader = future is None
            if leader:
                future = Future()
                self._inflight[key] = future
        assert future is not None
        if not leader:
            return future.result()
        try:
            result = compute()
        except BaseException as exc:
            future.set_exception(exc)
            raise
        else:
            future.set_result(result)
            return result
        finally:
            with self._inflight_guard:
                self._inflight.pop(key, None)

    def get_run(self, run_id: str, history_max_points: int = 1000, max_artifacts: int = 1000) -> RunDetailPublic:
        """A run with each metric's history (at most ``history_max_points`` points, evenly
        spaced), its artifact list (at most ``max_artifacts`` entries) and dataset inputs."""
        with self._errors():
            run = self.client.get_run(run_id)
            history: dict[str, list[MetricPoint]] = {}
            for key in sorted(run.data.metrics):
                points = sorted(self.client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))
                history[key] = [
                    MetricPoint(step=int(m.step), value=json_safe(float(m.value)), timestamp=int(m.timestamp))
                    for m in _downsample(points, history_max_points)
                ]
        artifacts, truncated = self._list_artifacts(run_id, max_artifacts)
        datasets = []
        for di in getattr(run.inputs, "dataset_inputs", None) or []:
            context = next((t.value for t in di.tags or [] if t.key == "mlflow.data.context"), None)
            datasets.append(
                DatasetInputPublic(
                    name=di.dataset.name,
                    digest=di.dataset.digest,
                    source_type=di.dataset.source_type,
                    context=context,
                )
            )
        return RunDetailPublic(
            **self._run_public(run),
            metric_history=history,
            artifacts=artifacts,
            artifacts_truncated=truncated,
            datasets=datasets,
        )

    def _list_artifacts(self, run_id: str, limit: int, max_depth: int = 4) -> tuple[list[ArtifactPublic], bool]:
        out: list[ArtifactPublic] = []
        queue: list[tuple[str | None, int]] = [(None, 0)]
        try:
            while queue:
                path, depth = queue.pop(0)
                for f in self.client.list_artifacts(run_id, path):
                    if len(out) >= limit:
                        return out, True
                    out.append(ArtifactPublic(path=f.path, is_dir=bool(f.is_dir), file_size=f.file_size))
                    if f.is_dir and depth + 1 < max_depth:
                        queue.append((f.path, depth + 1))
        except Exception as exc:  # noqa: BLE001 - artifacts on a store we cannot read: say so in the log
            logger.warning("run %s: artifacts not listable: %s", run_id, redact(str(exc), self._secrets))
            return out, True
        return out, False

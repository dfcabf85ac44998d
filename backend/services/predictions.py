"""Predictions from the production model: raw candles in, class probabilities and a signal out.

One :class:`~backend.ml_engine.predictor.Predictor` per model name is kept for the life of the
service; it follows the ``production`` alias by itself (hot reload in the background), so a
promotion is served without restarting anything.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from backend.ml_engine.errors import one_line

from ._mlflow import ensure_store_reachable
from .errors import InvalidDataError, NotFoundError, UnavailableError
from .redaction import redact
from .schemas import CandleIn, PredictionPublic, PredictionsPublic, json_safe
from .settings import ServiceSettings

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from backend.ml_engine.prediction_log import PredictionLog
    from backend.ml_engine.predictor import Predictor

__all__ = ["PredictionService", "candles_frame"]

logger = logging.getLogger(__name__)


def candles_frame(candles: Sequence[CandleIn]) -> pd.DataFrame:
    """A DataFrame (timestamp UTC + OHLCV, in the given order) for the predictor."""
    import pandas as pd

    columns = ["timestamp", "open", "high", "low", "close", "volume"]
    frame = pd.DataFrame([c.model_dump() for c in candles], columns=columns)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


class PredictionService:
    """Serves ``models:/<name>@production`` for each model name asked about."""

    def __init__(self, settings: ServiceSettings, factory: Callable[[str], Predictor] | None = None) -> None:
        self.settings = settings
        self._factory = factory
        self._predictors: dict[str, Predictor] = {}
        self._guard = threading.Lock()
        self._secrets = settings.secrets()
        self._log: PredictionLog | None = None

    @property
    def prediction_log(self) -> PredictionLog | None:
        """The one prediction log of this process's predictors (``ML_PREDICTION_LOG``); None before the first
        predictor is loaded, or with recording off."""
        return self._log

    def _predictor(self, model_name: str) -> Predictor:
        from backend.ml_engine.predictor import ModelNotAvailableError, PredictorError

        predictor = self._predictors.get(model_name)
        if predictor is not None:
            return predictor
        with self._guard:
            predictor = self._predictors.get(model_name)
            if predictor is None:
                ensure_store_reachable(self.settings.mlflow_tracking_uri)
                try:
                    if self._factory is not None:
                        predictor = self._factory(model_name)
                    else:
                        from backend.ml_engine.predictor import Predictor

                        predictor = Predictor(
                            model_name,
                            alias="production",
                            settings=self.settings,
                            record=self._log_for_predictors(),
                        )
                        predictor.record_source = "api"
                except ModelNotAvailableError as exc:
                    raise NotFoundError(redact(one_line(exc), self._secrets)) from None
                except PredictorError as exc:
                    raise UnavailableError(redact(one_line(exc), self._secrets)) from None
                self._predictors[model_name] = predictor
        return predictor

    def predict(self, model_name: str, candles: Sequence[CandleIn], symbol: str | None = None) -> PredictionPublic:
        """Probabilities (down, flat, up) and signal for the window ending at the last candle; ``symbol`` is
        what the prediction log records (None: ``unknown``)."""
        from backend.ml_engine.data import DataValidationError

        predictor = self._predictor(model_name)
        named = {"symbol": symbol} if symbol is not None else {}  # a stand-in predictor may not take it
        try:
            prediction = predictor.predict(candles_frame(candles), source="request", **named)
        except DataValidationError as exc:
            raise InvalidDataError(one_line(exc)) from None
        return PredictionPublic.model_validate(json_safe(prediction.to_dict()))

    def predict_many(self, model_name: str, candles_by_symbol: Mapping[str, Sequence[CandleIn]]) -> PredictionsPublic:
        """One prediction per symbol, every window in ONE model call (`Predictor.predict_many`), in the order
        given. Bad candles of one symbol: `InvalidDataError` naming it (``request ETH/BTC: ...``), nothing
        predicted."""
        from backend.ml_engine.data import DataValidationError

        predictor = self._predictor(model_name)
        frames = {symbol: candles_frame(candles) for symbol, candles in candles_by_symbol.items()}
        try:
            predictions = predictor.predict_many(frames, source="request")
        except DataValidationError as exc:
            raise InvalidDataError(one_line(exc)) from None
        return PredictionsPublic(
            predictions={
                symbol: PredictionPublic.model_validate(json_safe(p.to_dict())) for symbol, p in predictions.items()
            }
        )

    def _log_for_predictors(self) -> PredictionLog | bool:
        """Called under ``_guard``: the shared log, or False (recording off)."""
        if not self.settings.prediction_log:
            return False
        if self._log is None:
            from backend.ml_engine.prediction_log import PredictionLog

            self._log = PredictionLog.from_settings(self.settings)
        return self._log

    def close(self) -> None:
        with self._guard:
            predictors, self._predictors = list(self._predictors.values()), {}
            log, self._log = self._log, None
        for p in predictors:
            try:
                p.close()
            except Exception:  # closing on shutdown
                logger.debug("predictor close failed", exc_info=True)
        if log is not None:
            log.close()

"""``POST /predict``: raw candles in, class probabilities and signal out, from the production model
(one series, or several by symbol in one model call)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ..deps import PredictionServiceDep
from ..schemas import PredictCreate, PredictionPublic, PredictionsPublic, error_responses
from .metrics import prediction_timer

router = APIRouter(tags=["predictions"])


@router.post("/predict", response_model=PredictionPublic | PredictionsPublic, responses=error_responses(400, 404, 422))
def predict(
    body: PredictCreate, predictions: PredictionServiceDep, request: Request
) -> PredictionPublic | PredictionsPublic:
    """Probabilities of down / flat / up for the window ending at the last candle, and the signal
    (sell / hold / buy). One route, two forms of the body, told apart by their field:

    * ``{"model_name", "candles": [...], "symbol"?}``: one series, answered with one prediction
      (``PredictionPublic``); ``symbol`` (optional) is what the prediction log records;
    * ``{"model_name", "symbols": {"ETH/BTC": [...], "LTC/BTC": [...]}}``: up to 200 series, every last
      window in ONE model call, answered with ``{"predictions": {symbol: PredictionPublic}}``
      (``PredictionsPublic``), symbols in the order sent.

    Both forms or neither: 422. 404 when the model has no production version; 422 for too few or
    invalid candles (the message names the row and rule, and the symbol: nothing is predicted then).
    A request counts once in ``ml_predictions_total`` whatever its number of symbols."""
    with prediction_timer(request, body.model_name):  # ml_predictions_total, ml_prediction_latency_seconds
        if body.symbols is not None:
            return predictions.predict_many(body.model_name, body.symbols)
        assert body.candles is not None  # PredictCreate: exactly one of the two
        return predictions.predict(body.model_name, body.candles, symbol=body.symbol)

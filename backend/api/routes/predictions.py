"""``POST /predict``: raw candles in, class probabilities and signal out, from the production model."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ..deps import PredictionServiceDep
from ..schemas import PredictCreate, PredictionPublic, error_responses
from .metrics import prediction_timer

router = APIRouter(tags=["predictions"])


@router.post("/predict", response_model=PredictionPublic, responses=error_responses(400, 404, 422))
def predict(body: PredictCreate, predictions: PredictionServiceDep, request: Request) -> PredictionPublic:
    """Probabilities of down / flat / up for the window ending at the last candle, and the signal
    (sell / hold / buy). 404 when the model has no production version; 422 for too few or invalid
    candles (the message names the row and rule)."""
    with prediction_timer(request, body.model_name):  # ml_predictions_total, ml_prediction_latency_seconds
        return predictions.predict(body.model_name, body.candles)

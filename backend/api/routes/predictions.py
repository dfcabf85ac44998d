"""``POST /predict``: raw candles in, class probabilities and signal out, from the production model."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import PredictionServiceDep
from ..schemas import Message, PredictCreate, PredictionPublic

router = APIRouter(tags=["predictions"])


@router.post("/predict", response_model=PredictionPublic, responses={404: {"model": Message}, 422: {"model": Message}})
def predict(body: PredictCreate, predictions: PredictionServiceDep) -> PredictionPublic:
    """Probabilities of down / flat / up for the window ending at the last candle, and the signal
    (sell / hold / buy). 404 when the model has no production version; 422 for too few or invalid
    candles (the message names the row and rule)."""
    return predictions.predict(body.model_name, body.candles)

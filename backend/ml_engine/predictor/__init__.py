"""Predictor for the trading bot: raw recent candles -> class probabilities and a signal.

Usage::

    from backend.ml_engine.predictor import Predictor

    predictor = Predictor("hybrid_cnn_lstm")           # models:/hybrid_cnn_lstm@production
    pred = predictor.predict(candles)                  # DataFrame: timestamp + OHLCV, oldest first
    pred.signal, pred.confidence, pred.probabilities   # "buy", 0.61, {"down": .., "flat": .., "up": ..}

    Predictor.from_model_uri("models:/hybrid_cnn_lstm/7")   # a pinned version (evaluation, tests)

Every registered version is also an MLflow pyfunc model with the same code behind it (raw candles
in, probabilities and signal out, ONNX Runtime, no torch)::

    mlflow.pyfunc.load_model("models:/hybrid_cnn_lstm@production").predict(candles)
    mlflow models serve -m models:/hybrid_cnn_lstm@production --env-manager local

What a version brings
---------------------
A registry version's model folder (``MLflowTracker.log_model``) holds ``MLmodel``, the PyTorch
model (``data/model.pth``), ``model.onnx`` and ``artifacts/metadata.json``. The predictor
resolves the URI through the model store (`registry.ModelStore.resolve`, the one reading of a
model URI) and downloads the folder once into a local cache keyed by store, model name, version
and MLflow model id (``<cache_dir>/<store hash>/<name>/v<version>-<model id>``; written to a
temporary folder and renamed, so a half-downloaded folder is never used), then

* runs ``model.onnx`` with ONNX Runtime (CPU provider, ``onnx_threads`` intra-op threads, 1 by
  default: one prediction is a batch of one, where more threads cost more than they give), or the
  PyTorch model when the version has no ONNX file, ORT cannot load it, or ``prefer_onnx=False``
  (``backend`` says which: ``"onnxruntime"`` or ``"torch"``); a process serving with ONNX Runtime
  never imports torch;
* turns candles into model input with the version's OWN ``metadata.json["pipeline"]`` through
  `pipeline.build_inference_windows`, the code path training used (features, window,
  normaliser statistics of that version): no train/serve skew, and a new version with other
  features or another window is served correctly the moment it is loaded.

Candles
-------
``predict`` / ``predict_proba`` take a DataFrame with a time column and OHLCV (any column case,
as `data.validate_candles` accepts), oldest first. The data policy of training applies: the frame
is validated by `validate_candles` with the model's timeframe and the default ``max_fill_gap``
(short gaps forward-filled, longer ones split segments, NaN / non-positive prices / high < low
refused with a `DataValidationError` naming the row and rule). A frame that is already clean
(sorted unique timestamps on the timeframe grid, no gap, finite valid prices: what the bot's
candle feed gives) is recognised by a compiled check (`_fast_clean`) that accepts only frames
`validate_candles` would return unchanged, and skips its ~2.5 ms of pandas work; anything else
goes through `validate_candles`. The last window needs ``pipeline["min_history_rows"]`` (feature
lookback + window - 1) consecutive candles in the last segment; fewer is a `DataValidationError`
with rule ``too_few_rows``.

``predict`` computes features only on the last ``min_history_rows`` candles: every feature at
row t is computed from rows ``t - lookback + 1 .. t`` only (`features` module contract), so this
gives the training features bit for bit (tests/test_features.py), and its cost does not grow with
the frame. On that tail it calls the training feature function (`features.segment_features`,
only for the last ``window`` rows) and the version's `Normalizer` directly on numpy columns
(`_LastWindow`), skipping the DataFrame wrapper of `build_inference_windows` (~0.2 ms); for every
version it loads, the predictor checks that this gives the same bits as
`build_inference_windows` and otherwise uses the latter.
``predict_proba`` (evaluation) runs `build_inference_windows` on the whole frame, as training did.
Latency: ``bench/results/predictor.md``.

Hot reload
----------
A loaded version is an immutable `ModelBundle` (runner + pipeline + metadata + version).
``predict`` reads the current bundle reference ONCE and uses only it, so a request in flight
finishes on the version it started with. ``refresh()`` resolves the alias; if it moved, it
downloads and loads the new version completely (session created, pipeline checked), then swaps
the reference under a lock and returns True; the old bundle is freed when its last request
ends. Refreshes are serialised by their own lock, so two never load the same version twice.
With ``refresh_interval_s > 0`` (default 30 s) a ``predict`` call that finds the last check older
than that starts ``refresh()`` in a background thread and goes on with the current bundle: the
request path never waits for the registry or a download. Errors in a background refresh are
logged and the current version keeps serving. ``close()`` waits for a running refresh.

Modules (private; this package's ``__all__`` is the public surface)
-------------------------------------------------------------------
``_predictor`` (`Predictor`, `Prediction`, hot reload), ``_store`` (URIs through the model store,
the local cache of model folders), ``_bundle`` (`ModelBundle`, the ONNX Runtime and PyTorch
runners, loading a model folder), ``_request`` (one request: candles -> last window ->
probabilities -> signal, shared with the pyfunc), ``_fast`` (the compiled clean-frame check, the
direct last window, softmax), ``_pyfunc`` (the MLflow ``python_function`` flavor: loader module
and the candle signature), ``_errors``. All log to the ``backend.ml_engine.predictor`` logger.
"""

from __future__ import annotations

from ..config import DEFAULT_MODEL_NAME
from ..registry import ALIAS_PRODUCTION
from ._bundle import BACKEND_ONNX, BACKEND_TORCH, ModelBundle
from ._errors import ModelNotAvailableError, PredictorError
from ._predictor import Prediction, Predictor
from ._request import SIGNALS

__all__ = [
    "ALIAS_PRODUCTION",
    "BACKEND_ONNX",
    "BACKEND_TORCH",
    "DEFAULT_MODEL_NAME",
    "SIGNALS",
    "ModelBundle",
    "ModelNotAvailableError",
    "Prediction",
    "Predictor",
    "PredictorError",
]

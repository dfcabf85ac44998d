"""Export a trained model to ONNX and check parity with onnxruntime.

Exporter choice (measured with torch 2.13 CPU on the default HybridCNNLSTM): the TorchScript
exporter (``dynamo=False``) exports in ~0.4 s and emits a native ONNX ``LSTM`` op; the dynamo
exporter (``dynamo=True``, onnxscript) gives the same parity but takes ~9 s. The TorchScript
exporter is therefore the default; ``exporter="dynamo"`` selects the other one, and ``"auto"``
falls back to dynamo if the TorchScript exporter fails (e.g. removed in a later torch).
"""

from __future__ import annotations

import copy
import logging
import os
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["OnnxExportResult", "OnnxParityError", "export_onnx", "INPUT_NAME", "OUTPUT_NAME", "DEFAULT_OPSET"]

logger = logging.getLogger(__name__)

INPUT_NAME = "candles"
OUTPUT_NAME = "logits"
DEFAULT_OPSET = 17


class OnnxParityError(RuntimeError):
    """onnxruntime output differs from torch output by more than the tolerance."""


@dataclass(frozen=True)
class OnnxExportResult:
    """Outcome of :func:`export_onnx`."""

    path: Path
    """Where the .onnx file was written."""

    max_abs_diff: float
    """Max |onnxruntime logits - torch logits| on the example batch."""

    opset: int
    """ONNX opset of the exported graph."""

    exporter: str = "torchscript"
    """Exporter used: 'torchscript' (dynamo=False) or 'dynamo'."""

    export_seconds: float = 0.0
    """Wall time of torch.onnx.export."""

    max_abs_proba_diff: float | None = None
    """Max |onnxruntime probability - native probability| (softmax of the logits) on the example batch."""


def _export_torchscript(model: nn.Module, x: torch.Tensor, path: Path, opset: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notice of the TorchScript exporter, LSTM batch_first note
        torch.onnx.export(
            model,
            (x,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )


def _export_dynamo(model: nn.Module, x: torch.Tensor, path: Path, opset: int) -> None:
    batch = torch.export.Dim("batch", min=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (x,),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
            opset_version=opset,
            dynamo=True,
            verbose=False,
        )
        if program is None:  # only the legacy exporter (dynamo=False) returns None
            raise RuntimeError("torch.onnx.export returned no ONNX program")
        program.save(str(path))


_EXPORT_LOCK = threading.Lock()
"""torch.onnx keeps its export state in process globals (``GLOBALS.in_onnx_export``): two exports
running at once in one process (concurrent trainings in the worker) fail with an AssertionError,
and the TorchScript failure used to fall back to the 20x slower dynamo exporter. Exports (~0.4 s)
are therefore serialised; the parity check runs outside the lock."""


def export_onnx(
    model: nn.Module,
    example: np.ndarray,
    path: str | os.PathLike[str],
    *,
    opset: int = DEFAULT_OPSET,
    tolerance: float = 1e-4,
    exporter: str = "auto",
    probability_tolerance: float | None = None,
) -> OnnxExportResult:
    """Export ``model`` to ONNX at ``path`` and verify it with onnxruntime.

    Args:
        model: a module mapping float32 (B, T, F) to logits (B, C). Exported in eval mode from a
            CPU copy; the caller's model (device, train/eval mode) is left untouched.
        example: a real input batch (B, T, F) (e.g. the first test windows); used for tracing and
            for the parity check. B >= 2 recommended so the batch axis is visibly dynamic.
        path: output file; its parent is created. Written atomically (tmp file, then os.replace).
        opset: ONNX opset.
        tolerance: max allowed |onnxruntime - torch| on ``example``; above it ``OnnxParityError``.
        exporter: 'torchscript', 'dynamo' or 'auto' (torchscript, dynamo if that fails).
        probability_tolerance: also the max allowed |onnxruntime - torch| of the softmax
            probabilities (the model families check 1e-5); None: not checked, still measured.

    Returns:
        OnnxExportResult(path, max_abs_diff, opset, exporter, export_seconds). The graph has input
        "candles" (batch, T, F) float32 and output "logits" (batch, C) with a dynamic batch axis.
    """
    import onnxruntime as ort

    if exporter not in ("auto", "torchscript", "dynamo"):
        raise ValueError(f"exporter must be 'auto', 'torchscript' or 'dynamo', got {exporter!r}")
    arr = np.ascontiguousarray(np.asarray(example, dtype=np.float32))
    if arr.ndim != 3 or arr.shape[0] < 1:
        raise ValueError(f"example must have shape (B, T, F) with B >= 1, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("example contains NaN or inf")

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cpu_model = copy.deepcopy(model).to("cpu").eval()
    x = torch.from_numpy(arr)
    with torch.no_grad():
        expected = cpu_model(x).numpy()

    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        order = ["torchscript", "dynamo"] if exporter == "auto" else [exporter]
        used = ""
        t0 = time.perf_counter()
        for i, name in enumerate(order):
            try:
                with _EXPORT_LOCK:
                    t0 = time.perf_counter()
                    (_export_torchscript if name == "torchscript" else _export_dynamo)(cpu_model, x, tmp, opset)
                used = name
                break
            except Exception:
                if i == len(order) - 1:
                    raise
                logger.warning("ONNX export with the %s exporter failed; trying %s", name, order[i + 1], exc_info=True)
        seconds = time.perf_counter() - t0

        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(str(tmp), options, providers=["CPUExecutionProvider"])
        got = session.run([OUTPUT_NAME], {INPUT_NAME: arr})[0]
        if got.shape != expected.shape:
            raise OnnxParityError(f"onnxruntime output shape {got.shape} != torch output shape {expected.shape}")
        max_abs_diff = float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64))))
        if not np.isfinite(max_abs_diff) or max_abs_diff > tolerance:
            raise OnnxParityError(
                f"ONNX parity check failed: max abs diff {max_abs_diff:.3g} > tolerance {tolerance:.3g}"
            )
        proba_diff = float(np.max(np.abs(_softmax(got) - _softmax(expected))))
        if probability_tolerance is not None and not proba_diff <= probability_tolerance:
            raise OnnxParityError(
                f"ONNX parity check failed: max abs probability diff {proba_diff:.3g} > {probability_tolerance:.3g}"
            )
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()

    logger.info(
        "Exported ONNX model to %s with the %s exporter (opset %d) in %.2fs; parity max abs diff %.3g",
        path,
        used,
        opset,
        seconds,
        max_abs_diff,
    )
    return OnnxExportResult(
        path=path,
        max_abs_diff=max_abs_diff,
        opset=opset,
        exporter=used,
        export_seconds=seconds,
        max_abs_proba_diff=proba_diff,
    )


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out

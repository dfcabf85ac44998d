"""ONNX export: parity with torch via onnxruntime, dynamic batch, failure paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from backend.ml_engine import onnx_export
from backend.ml_engine.model import HybridCNNLSTM, ModelConfig
from backend.ml_engine.onnx_export import INPUT_NAME, OUTPUT_NAME, OnnxParityError, export_onnx


@pytest.fixture(scope="module")
def trained_like_model() -> HybridCNNLSTM:
    torch.manual_seed(3)
    model = HybridCNNLSTM(ModelConfig(n_features=10, window=32, bidirectional=False))
    # populate BatchNorm running stats so eval differs from init
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, 32, 10) * 2 + 0.5)
    return model


def test_export_parity_and_dynamic_batch(trained_like_model: HybridCNNLSTM, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    example = rng.normal(size=(4, 32, 10)).astype(np.float32)
    result = export_onnx(trained_like_model, example, tmp_path / "sub" / "model.onnx")
    assert result.path == tmp_path / "sub" / "model.onnx" and result.path.exists()
    assert result.max_abs_diff <= 1e-4
    assert result.opset == onnx_export.DEFAULT_OPSET
    assert result.exporter in ("torchscript", "dynamo")
    assert trained_like_model.training, "caller's model mode must be left untouched"
    assert not list(result.path.parent.glob("*.tmp"))

    onnx.checker.check_model(onnx.load(str(result.path)))
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [INPUT_NAME]
    assert [o.name for o in session.get_outputs()] == [OUTPUT_NAME]
    trained_like_model.eval()
    try:
        for batch in (1, 7):
            x = rng.normal(size=(batch, 32, 10)).astype(np.float32)
            got = session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
            with torch.no_grad():
                want = trained_like_model(torch.from_numpy(x)).numpy()
            assert got.shape == (batch, 3)
            assert np.max(np.abs(got - want)) <= 1e-4
    finally:
        trained_like_model.train()


def test_parity_failure_raises_and_leaves_no_file(
    trained_like_model: HybridCNNLSTM, tmp_path: Path, monkeypatch
) -> None:
    real_session = ort.InferenceSession

    class Skewed:
        def __init__(self, *args, **kwargs) -> None:
            self._s = real_session(*args, **kwargs)

        def run(self, *args, **kwargs):
            return [o + 1e-2 for o in self._s.run(*args, **kwargs)]

    monkeypatch.setattr(ort, "InferenceSession", Skewed)
    target = tmp_path / "bad.onnx"
    with pytest.raises(OnnxParityError, match="max abs diff"):
        export_onnx(trained_like_model, np.zeros((2, 32, 10), np.float32), target)
    assert not target.exists()
    assert not list(tmp_path.iterdir())


def test_rejects_bad_example(trained_like_model: HybridCNNLSTM, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\(B, T, F\)"):
        export_onnx(trained_like_model, np.zeros((32, 10), np.float32), tmp_path / "m.onnx")
    bad = np.zeros((2, 32, 10), np.float32)
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        export_onnx(trained_like_model, bad, tmp_path / "m.onnx")


def test_concurrent_exports_in_one_process_all_use_torchscript(
    trained_like_model: HybridCNNLSTM, tmp_path: Path
) -> None:
    # torch.onnx keeps export state in process globals: unserialised, concurrent exports fail with
    # "GLOBALS.in_onnx_export must be ..." and fall back to the slow dynamo exporter
    import threading

    example = np.random.default_rng(1).normal(size=(4, 32, 10)).astype(np.float32)
    results: list[onnx_export.OnnxExportResult] = []
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def export(i: int) -> None:
        start.wait()
        try:
            for k in range(2):
                results.append(export_onnx(trained_like_model, example, tmp_path / f"m{i}-{k}.onnx", exporter="auto"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=export, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert len(results) == 6
    assert {r.exporter for r in results} == {"torchscript"}
    assert all(r.max_abs_diff <= 1e-4 and r.path.exists() for r in results)

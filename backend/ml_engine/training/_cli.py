"""The command line: ``python -m backend.ml_engine.training_orchestrator`` (the guide's flags)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from ..cli_args import (
    OneLineParser,
    add_data_arguments,
    add_policy_arguments,
    policy_from_args,
    positive_float,
    positive_int,
)
from ..config import DEFAULT_MODEL_NAME, EXPERIMENT_TRAINING, Settings
from ..errors import one_line
from ._orchestrator import TrainingOrchestrator
from ._request import TrainingRequest

__all__ = ["DEMO_OVERRIDES", "EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_OK", "build_parser", "main"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _families_epilog() -> str:
    from ..families import family_names, get_family

    lines = ["Model families (--model NAME, options with --model-option KEY=VALUE):"]
    for name in family_names():
        fam = get_family(name)
        opts = ", ".join(f"{o.name}={_show(o.default)}" for o in fam.options())
        lines.append(f"  {name}: {fam.title}\n      {opts}")
    return "\n".join(lines)


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _model_option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def build_parser() -> argparse.ArgumentParser:
    from ..families import DEFAULT_FAMILY, family_names

    p = OneLineParser(
        prog="python -m backend.ml_engine.training_orchestrator",
        description="Train the HybridCNN-LSTM on market candles, evaluate it honestly, log it to MLflow "
        "(experiment model_training) and register a version. Defaults come from .env / environment.",
        epilog="Example: python -m backend.ml_engine.training_orchestrator --epochs 100 --batch-size 128 "
        "--lr 0.0005 --date-range 60\n         python -m backend.ml_engine.training_orchestrator --model lightgbm "
        "--model-option num_leaves=63\n\n" + _families_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--epochs", type=positive_int, help="training epochs (default: ML_EPOCHS or 20)")
    p.add_argument("--batch-size", type=positive_int, help="batch size (default: ML_BATCH_SIZE or 128)")
    p.add_argument("--lr", type=positive_float, help="learning rate (default: ML_LEARNING_RATE or 0.001)")
    add_data_arguments(p)
    p.add_argument("--seed", type=int, help="random seed; CPU runs with the same seed are repeatable")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="where to train (default: auto)")
    p.add_argument(
        "--model",
        choices=family_names(),
        default=None,
        metavar="FAMILY",
        help=f"model family: {', '.join(family_names())} (default: {DEFAULT_FAMILY})",
    )
    p.add_argument(
        "--model-option",
        action="append",
        type=_model_option,
        default=[],
        metavar="KEY=VALUE",
        help="an option of the family, e.g. num_leaves=63 or conv_channels=32,32; repeat for several",
    )
    p.add_argument(
        "--calibrate",
        action="store_true",
        help="fit a temperature on the validation split; stored with the version, applied when serving",
    )
    add_policy_arguments(p)
    p.add_argument("--model-name", default=DEFAULT_MODEL_NAME, help="registered model name (default: hybrid_cnn_lstm)")
    p.add_argument("--run-name", help="MLflow run name and output folder name (default: timestamped)")
    p.add_argument("--no-onnx", action="store_true", help="skip the ONNX export")
    p.add_argument("--no-mlflow", action="store_true", help="write local outputs only, no tracking")
    p.add_argument(
        "--auto-promote", action="store_true", help="move alias production to the new version if it passes the gate"
    )
    p.add_argument("--min-accuracy", type=float, help="promotion gate: minimal test accuracy")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run named by --run-name from its last checkpoint (after a crash or kill)",
    )
    p.add_argument(
        "--demo", action="store_true", help="small, quick configuration on the bundled data (used by make demo)"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


DEMO_OVERRIDES = {"epochs": 3, "date_range": 10, "window": 32, "batch_size": 256}


def _print_summary(result: dict[str, Any], settings: Settings, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    tm = result["test_metrics"]
    base = result["baselines"]
    bt = result["backtest"]
    rows = [
        ("metric", "model", "majority", "prev. direction"),
        (
            "accuracy",
            f"{tm['accuracy']:.4f}",
            f"{base['majority']['accuracy']:.4f}",
            f"{base['previous_direction']['accuracy']:.4f}",
        ),
        (
            "macro F1",
            f"{tm['f1_macro']:.4f}",
            f"{base['majority']['f1_macro']:.4f}",
            f"{base['previous_direction']['f1_macro']:.4f}",
        ),
    ]
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    print("", file=stream)
    print(
        f"Test split ({result['rows']['test']} windows; train {result['rows']['train']}, val {result['rows']['val']})",
        file=stream,
    )
    for i, r in enumerate(rows):
        print("  " + "  ".join(c.ljust(w[j]) for j, c in enumerate(r)), file=stream)
        if i == 0:
            print("  " + "  ".join("-" * w[j] for j in range(4)), file=stream)
    print("", file=stream)
    from ..evaluation import MIN_TRADES

    n_trades = int(bt["n_trades"])
    print(f"Backtest ({result.get('signal_policy') or 'argmax, long and short'}; fills at the next open)", file=stream)
    print("                       model       buy & hold", file=stream)
    if n_trades < MIN_TRADES:
        print(
            f"  total return         too few trades ({n_trades} < {MIN_TRADES})  {bt['buy_and_hold_total_return']:+.4f}",
            file=stream,
        )
        print(f"  Sharpe (annualised)  too few trades ({n_trades} < {MIN_TRADES})", file=stream)
    else:
        print(
            f"  total return         {bt['total_return']:+.4f}     {bt['buy_and_hold_total_return']:+.4f}",
            file=stream,
        )
        print(f"  Sharpe (annualised)  {bt['sharpe']:+.3f}      {bt['buy_and_hold_sharpe']:+.3f}", file=stream)
        if bt.get("sharpe_low") is not None and bt.get("sharpe_high") is not None:
            print(
                f"  Sharpe 95% interval  [{bt['sharpe_low']:+.2f}, {bt['sharpe_high']:+.2f}] (block bootstrap)",
                file=stream,
            )
    print(f"  max drawdown         {bt['max_drawdown']:.4f}      {bt['buy_and_hold_max_drawdown']:.4f}", file=stream)
    print(f"  trades / win rate    {int(bt['n_trades'])} / {bt['win_rate']:.3f}", file=stream)
    print("", file=stream)
    if result.get("onnx_max_abs_diff") is not None:
        print(f"ONNX parity: max |onnx - native| = {result['onnx_max_abs_diff']:.2e}", file=stream)
    print(f"Outputs:  {result['output_dir']}  (native model, model.onnx, metadata.json, plots)", file=stream)
    if result.get("run_id"):
        from backend.ml_engine.mlflow_integration.stores import mask_uri

        print(
            f"MLflow:   run {result['run_id']} in experiment '{EXPERIMENT_TRAINING}' at {mask_uri(settings.mlflow_tracking_uri)}",
            file=stream,
        )
        print(
            f"Registry: {result.get('model_name', DEFAULT_MODEL_NAME)} version {result['version']}"
            + (" (promoted to production)" if result.get("promoted") else ""),
            file=stream,
        )
        if result.get("promotion_reason") and not result.get("promoted"):
            print(f"Promotion refused: {result['promotion_reason']}", file=stream)
        print("Browse:   python start_mlflow_ui.py  ->  http://127.0.0.1:5000", file=stream)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )

    if args.resume and not args.run_name:
        print("error: --resume needs --run-name (the run whose checkpoint to continue)", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        settings = Settings()
    except Exception as exc:  # noqa: BLE001 - pydantic ValidationError: a bad .env value, said in one line
        print(f"error: invalid settings: {one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT

    overrides: dict[str, Any] = dict(DEMO_OVERRIDES) if args.demo else {}
    overrides.update(
        {
            k: v
            for k, v in {
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "lr": args.lr,
                "date_range": args.date_range,
                "data": args.data,
                "symbols": args.symbol,
                "timeframe": args.timeframe,
                "session": args.session,
                "seed": args.seed,
                "device": args.device,
                "window": args.window,
                "horizon": args.horizon,
                "family": args.model,
                "model_kwargs": dict(args.model_option) or None,
                "calibrate": args.calibrate or None,
                "policy": policy_from_args(args),
            }.items()
            if v is not None
        }
    )

    from backend.ml_engine.data import DataValidationError
    from backend.ml_engine.trainer import ProgressBarCallback

    from ..families import get_family

    try:
        request = TrainingRequest.from_settings(settings, **overrides)
        family = get_family(request.family)
        if args.no_onnx and family.input_kind == "tabular":
            raise ValueError(f"{family.name} is served from its ONNX export only; drop --no-onnx")
        if not args.no_onnx:
            family.check_exportable(request.model)
    except (ValueError, TypeError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT

    orchestrator = TrainingOrchestrator(settings, tracking=not args.no_mlflow)
    try:
        result = orchestrator.train_model_sync(
            model_name=args.model_name,
            run_name=args.run_name,
            export_onnx=not args.no_onnx,
            auto_promote=args.auto_promote,
            min_accuracy_for_promotion=args.min_accuracy,
            callbacks=[ProgressBarCallback()],
            request=request,
            resume=args.resume,
        )
    except Exception as exc:  # noqa: BLE001 - store unreachable before training and the like: one line, an exit code
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT if _is_bad_input(exc) else EXIT_FAILED
    if not result["success"]:
        print(f"error: {result['error']}", file=sys.stderr)
        return (
            EXIT_BAD_INPUT if result.get("error_type") in {DataValidationError.__name__, "ValueError"} else EXIT_FAILED
        )
    result["model_name"] = args.model_name
    _print_summary(result, settings)
    return EXIT_OK


def _is_bad_input(exc: BaseException) -> bool:
    from backend.ml_engine.data import DataValidationError

    return isinstance(exc, (DataValidationError, ValueError)) or type(exc).__name__ == "TrackingStoreUnavailable"

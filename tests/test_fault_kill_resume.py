"""A training killed with SIGKILL mid-epoch: its run does not stay RUNNING, and --resume ends on the
same weights as an uninterrupted run with the same seed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from mlflow import MlflowClient

from backend.ml_engine.mlflow_integration import resolve_tracking_uri
from backend.ml_engine.training_orchestrator import main

ARGS = [
    "--epochs",
    "4",
    "--window",
    "16",
    "--horizon",
    "4",
    "--date-range",
    "6",
    "--symbol",
    "ETH/BTC",
    "--symbol",
    "LTC/BTC",
    "--seed",
    "11",
    "--batch-size",
    "64",
    "--no-onnx",
]


@pytest.fixture
def env(tmp_path, pg_url, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", pg_url)
    monkeypatch.setenv("MLFLOW_ARTIFACT_LOCATION", str(tmp_path / "artifacts"))
    return tmp_path


def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_weights(env, pg_url):
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.ml_engine.training_orchestrator", *ARGS, "--run-name", "killed"],
        cwd=env,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    ckpt = env / "outputs" / "killed" / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 240
    while not ckpt.exists():  # epoch 1 is checkpointed: epoch 2 is running now
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "no checkpoint within 240 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    epochs_done = torch.load(ckpt, weights_only=True)["epoch"]
    assert epochs_done < 4, "killed too late to test a resume"

    client = MlflowClient(tracking_uri=resolve_tracking_uri(pg_url))
    killed = client.search_runs(
        [client.get_experiment_by_name("model_training").experiment_id], "attributes.run_name = 'killed'"
    )[0]
    assert killed.info.status == "RUNNING"  # nobody could end it: the process died

    assert main([*ARGS, "--run-name", "killed", "--resume"]) == 0
    killed = client.get_run(killed.info.run_id)
    assert killed.info.status == "KILLED"
    assert "died" in killed.data.tags["failure_reason"]

    assert main([*ARGS, "--run-name", "straight"]) == 0
    resumed = torch.load(env / "outputs" / "killed" / "model.pt", weights_only=False)["state_dict"]
    straight = torch.load(env / "outputs" / "straight" / "model.pt", weights_only=False)["state_dict"]
    assert resumed.keys() == straight.keys()
    for key in straight:
        assert torch.equal(resumed[key], straight[key]), key


def test_resume_without_a_checkpoint_is_a_clear_error(env, capsys):
    code = main([*ARGS, "--run-name", "never_ran", "--resume", "--no-mlflow"])
    assert code == 2
    assert capsys.readouterr().err == (
        "error: nothing to resume: no checkpoint of run 'never_ran' in outputs/never_ran\n"
    )

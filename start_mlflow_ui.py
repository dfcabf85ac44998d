#!/usr/bin/env python
"""Start the MLflow UI over the configured tracking store and artifact root (the guide's script).

    python start_mlflow_ui.py                    # http://127.0.0.1:5000
    python start_mlflow_ui.py --host 0.0.0.0 --port 5000
    python start_mlflow_ui.py --dry-run          # print the command (password masked), start nothing

The same as ``tbml ui``: the code lives in `backend.tools.mlflow_ui` (installed with the package,
so the command works outside this checkout); see its docstring for what is started and how.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from backend.tools.mlflow_ui import artifact_root_uri, build_command, main, masked_command  # noqa: E402

__all__ = ["artifact_root_uri", "build_command", "main", "masked_command"]

if __name__ == "__main__":
    sys.exit(main(prog="python start_mlflow_ui.py"))

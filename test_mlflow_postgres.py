#!/usr/bin/env python
"""Check the MLflow tracking store: connection, schema version, a write and a read (the guide's script).

    python test_mlflow_postgres.py                      # the store from MLFLOW_TRACKING_URI / .env
    python test_mlflow_postgres.py --uri postgresql://user:pass@localhost:5432/mlflow_tracking

The same as ``tbml check-store``: the code lives in `backend.tools.check_store` (installed with the
package); see its docstring for the four steps. Exit code 0 when every step passed, 1 otherwise.
This is a command-line tool, not a pytest module (pytest collects only ``tests/``).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from backend.tools.check_store import (  # noqa: E402
    check_connection,
    check_schema,
    check_write_read,
    cleanup,
    create_scratch_experiment,
    main,
)

__all__ = ["check_connection", "check_schema", "check_write_read", "cleanup", "create_scratch_experiment", "main"]
__test__ = False  # not a test module, whatever the file name says

if __name__ == "__main__":
    sys.exit(main(prog="python test_mlflow_postgres.py"))

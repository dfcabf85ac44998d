"""Is a process alive? Used to end the runs and jobs of processes that died without saying so."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def host_identity() -> str:
    """This machine and pid namespace: two processes with equal identities see each other's pids."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = "?"
    return f"{socket.gethostname()}|{namespace}"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (on this machine)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        state = stat.rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True

"""The worker's side of a job: claim the head of the line, run it in its own OS process, record
how that process ended.

:class:`JobRunner` is what the huey task calls (``runner(job_id) -> "done" | "busy" | "gone"``);
tests may call it directly. The queue message only wakes a free slot up: the job run is the head of
the line in the jobs table (:meth:`JobStore.claim_next`: highest priority, then oldest), so jobs
start in submission order within a priority whatever order messages arrive in, and a job whose
message was retried or lost still runs in its turn.

The job itself runs in ``python -m backend.services.job_process`` (:mod:`.job_process`): a fresh
interpreter per job with ``OMP_NUM_THREADS`` = the worker's threads per job, the worker's own
settings on stdin. The process writes the job's heartbeat, progress and outcome. When it dies
without recording an outcome (killed by the kernel's OOM killer, a segfault), the runner fails
the job with its exit status and ends its MLflow run. When the worker itself is stopped, it kills
the job processes it started and fails their jobs ("worker stopped"); when it is SIGKILLed, the
job processes die with it (``PR_SET_PDEATHSIG``) and the reaper fails their jobs and marks their
runs KILLED. A job whose worker died is failed, never retried: a training may already have
registered a version; submit it again.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from .job_process import JobCancelled, JobProgressCallback, settings_payload, training_overrides
from .job_store import FAILED, RUNNING, JobRecord, JobStore, host_identity
from .queue import Outcome
from .reaper import end_runs_of_dead_jobs, reap_dead_jobs
from .settings import ServiceSettings

__all__ = [
    "JobCancelled",
    "JobProgressCallback",
    "JobRunner",
    "training_overrides",
]

logger = logging.getLogger(__name__)


def _exit_description(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


class JobRunner:
    """Executes jobs from the worker process, each in a child process: ``runner(job_id)``."""

    def __init__(self, settings: ServiceSettings, store: JobStore, *, threads_per_job: int | None = None) -> None:
        self.settings = settings
        self.store = store
        self.pid = os.getpid()
        self.host = socket.gethostname()
        self.host_id = host_identity()
        self.threads_per_job = threads_per_job or settings.threads_per_job
        self._payload = settings_payload(settings)
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._guard = threading.Lock()
        self._stopping = False

    def __call__(self, job_id: str) -> Outcome:
        if self._stopping:
            return "busy"
        reap_dead_jobs(self.settings, self.store, self.host_id)
        claim, job = self.store.claim_next(
            host=self.host, pid=self.pid, host_id=self.host_id, limit=self.settings.max_concurrent_trainings
        )
        if claim == "busy":
            logger.info("the cluster cap of %s running trainings is reached", self.settings.max_concurrent_trainings)
            return "busy"
        if claim == "gone" or job is None:
            logger.debug("woken by job %s; nothing queued (cancelled or run by another worker)", job_id)
            return "gone"
        if job.id != job_id:
            logger.debug("woken by job %s; running %s, the head of the line", job_id, job.id)
        self._run_in_process(job)
        return "done"

    def running(self) -> list[str]:
        """Ids of the jobs whose processes this runner is waiting on."""
        with self._guard:
            return list(self._children)

    def _run_in_process(self, job: JobRecord) -> None:
        env = dict(os.environ)
        threads = str(self.threads_per_job)
        env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)
        env["PYTHONUNBUFFERED"] = "1"
        command = [
            sys.executable,
            "-m",
            "backend.services.job_process",
            job.id,
            "--owner-pid",
            str(self.pid),
            "--threads",
            threads,
        ]
        try:
            # its own process group: Ctrl-C in the worker's terminal (SIGINT to the terminal's group) lets the
            # worker finish its running jobs, instead of killing them mid-import or mid-epoch
            proc = subprocess.Popen(command, stdin=subprocess.PIPE, env=env, process_group=0)
        except OSError as exc:
            self._fail(job, f"job process not started: {type(exc).__name__}: {exc}")
            return
        with self._guard:
            self._children[job.id] = proc
        try:
            assert proc.stdin is not None
            try:
                proc.stdin.write(self._payload.encode())
                proc.stdin.close()
            except BrokenPipeError:  # it died at once; its exit status says why
                pass
            self.store.set_process(job.id, job_pid=proc.pid, threads=self.threads_per_job)
            logger.info("job %s (%s) running in process %d with %s thread(s)", job.id, job.kind, proc.pid, threads)
            returncode = self._wait(proc, job.id)
        except BaseException:  # huey interrupts this thread when the worker stops: take the job down with it
            self._stop_child(job, proc, "worker stopped")
            raise
        finally:
            with self._guard:
                self._children.pop(job.id, None)
        if self._stopping:
            return
        after = self.store.get(job.id)
        if after is not None and after.status == RUNNING and after.worker_pid == self.pid:
            self._fail(after, f"job process died: {_exit_description(returncode)}")

    def _wait(self, proc: subprocess.Popen[bytes], job_id: str) -> int:
        """Wait in short steps, so that the thread can be interrupted; meanwhile write the job's
        heartbeat. The job process writes its own only once it has started (a fresh interpreter
        importing torch takes seconds, more on a loaded host than the heartbeat timeout), and the
        job lives as long as its process and this worker do: without this beat the reaper failed
        a booting job ("no heartbeat") while its worker was alive."""
        interval = self.settings.job_heartbeat_interval_s
        next_beat = time.monotonic() + interval
        while True:
            try:
                return proc.wait(timeout=min(0.5, interval))
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + interval
                try:
                    self.store.heartbeat(job_id, pid=self.pid, host_id=self.host_id)
                except Exception as exc:  # noqa: BLE001 - a database blip must not end the wait
                    logger.warning("job %s: heartbeat not written: %s", job_id, type(exc).__name__)

    def _fail(self, job: JobRecord, error: str) -> None:
        """End the job's MLflow run KILLED, then fail the job: whoever sees it failed sees its run ended."""
        end_runs_of_dead_jobs(self.settings, self.store, [job.id], reason=error)
        if self.store.finish(job.id, FAILED, pid=self.pid, host_id=self.host_id, error=error):
            logger.error("job %s failed: %s", job.id, error)

    def _stop_child(self, job: JobRecord, proc: subprocess.Popen[bytes], reason: str) -> bool:
        """Stop a job's process; fail the job if it was still running. Returns whether it was."""
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        after = self.store.get(job.id)
        if after is not None and after.status == RUNNING and after.worker_pid == self.pid:
            self._fail(after, reason)
            return True
        return False

    def stop_all(self, reason: str = "worker stopped") -> list[str]:
        """Kill every job process this runner started and fail their jobs; returns their ids."""
        self._stopping = True
        with self._guard:
            children = list(self._children.items())
        stopped = []
        for job_id, proc in children:
            job = self.store.get(job_id)
            if job is not None and self._stop_child(job, proc, reason):
                stopped.append(job_id)
        return stopped

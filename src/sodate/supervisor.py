"""`sodate up`'s background services in a child process.

Event processing is CPU-bound: in the HTTP server's process it would share one interpreter lock
with accepting requests, so `up` runs the services in a child and both get a core.

The parent wakes a service by writing its name and a newline to the child's stdin (an empty line
wakes them all). The child stops its services once stdin ends, which happens however the parent
ends, SIGKILL included, so the services never outlive the server. A child that dies while the
server runs is restarted after a pause that grows while it keeps dying.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from sodate.worker import ServiceRunner

log = structlog.get_logger(__name__)

# -P: the child imports what the parent imports, not modules that sit in the working directory.
SERVICES_COMMAND = (sys.executable, "-P", "-m", "sodate", "up-services")
FIRST_RESTART_DELAY_SECONDS = 1.0
MAX_RESTART_DELAY_SECONDS = 30.0
# A child that lived this long was working, so its death starts the delays afresh.
STABLE_AFTER_SECONDS = 60.0


# `sodate.metrics.MULTIPROCESS_DIRECTORY`, named again: importing that module makes the metrics.
_METRICS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def metrics_shared_with_services() -> Iterator[None]:
    """Keep the metrics of the server and of its services child in one directory, made now and
    removed when the server ends, so that the server's `/metrics` sums both
    (`sodate.metrics.exposition`). prometheus_client reads the directory's name when it is
    first imported: this runs before. A directory set already (by a process manager) is
    used as it is."""
    if _METRICS_DIRECTORY in os.environ:
        yield
        return
    if "prometheus_client" in sys.modules:
        raise RuntimeError("metrics are shared only if set up before prometheus_client loads")
    directory = tempfile.mkdtemp(prefix="sodate-metrics-")
    os.environ[_METRICS_DIRECTORY] = directory
    try:
        yield
    finally:
        del os.environ[_METRICS_DIRECTORY]
        shutil.rmtree(directory, ignore_errors=True)


class ServicesProcess:
    """The server's handle on the child: start it, wake its services, restart it, stop it."""

    def __init__(self, *, worker_id: str, command: Sequence[str] = SERVICES_COMMAND) -> None:
        self.worker_id = worker_id
        self._command = list(command)
        # Held while writing a wake and while replacing the pipe, so that a wake never lands on
        # a closed descriptor whose number the process has meanwhile given to something else.
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._wakes: int | None = None
        self._started_at = 0.0
        # A plain flag: `stopping` runs in a signal handler, where taking a lock could deadlock.
        self._restart = True
        self._stopped = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        with self._lock:
            self._spawn()
        self._watcher = threading.Thread(
            target=self._watch, name="sodate-services-process", daemon=True
        )
        self._watcher.start()

    def wake(self, service: str | None = None) -> None:
        """Ask for the service's next pass now (all services', if none); never blocks."""
        with self._lock:
            if self._wakes is None:
                return
            try:
                os.write(self._wakes, f"{service or ''}\n".encode())
            except BlockingIOError:
                # Wakes are queued already; and a service runs on its interval anyway.
                pass
            except BrokenPipeError:
                # The child has died; the watcher restarts it.
                pass

    def stopping(self) -> None:
        """The server is shutting down: a child ending from now on is not restarted (the signal
        may have reached it too, e.g. systemd's to the whole group)."""
        self._restart = False

    def stop(self, timeout: float = 30.0) -> None:
        """End the child's input, so it finishes its current batches and exits; kill it if it
        has not after `timeout` seconds."""
        self._restart = False
        self._stopped.set()
        with self._lock:
            process = self._process
            self._close_wakes()
        if process is not None:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.error("background services did not stop in time: killing them", pid=process.pid)
                process.kill()
                process.wait()
        if self._watcher is not None:
            self._watcher.join()

    def _spawn(self) -> None:
        read_end, write_end = os.pipe()
        try:
            process = subprocess.Popen(self._command, stdin=read_end)  # noqa: S603 - our own command
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        os.set_blocking(write_end, False)
        self._process, self._wakes, self._started_at = process, write_end, time.monotonic()
        log.info("background services process started", pid=process.pid)

    def _close_wakes(self) -> None:
        if self._wakes is not None:
            os.close(self._wakes)
            self._wakes = None

    def _watch(self) -> None:
        delay = FIRST_RESTART_DELAY_SECONDS
        while True:
            process = self._process
            if process is not None:
                code = process.wait()
                with self._lock:
                    if not self._restart:
                        return
                    self._close_wakes()
                    self._process = None
                if time.monotonic() - self._started_at >= STABLE_AFTER_SECONDS:
                    delay = FIRST_RESTART_DELAY_SECONDS
                log.error(
                    "background services process died: restarting it",
                    pid=process.pid,
                    exit_code=code,
                    restart_in_seconds=delay,
                )
            if self._stopped.wait(delay):
                return
            delay = min(delay * 2, MAX_RESTART_DELAY_SECONDS)
            with self._lock:
                if not self._restart:
                    return
                try:
                    self._spawn()
                except OSError:
                    log.exception("could not start the background services process")


def follow_wakes(runner: ServiceRunner, wakes: int) -> None:
    """In the child: wake services as the server asks on the file descriptor `wakes`; at its
    end the server is gone, so let the current batches finish and stop.

    Read with `os.read`, not through a buffered file: the thread is a daemon, and a buffered
    reader's lock held by a thread blocked in a read makes the interpreter abort at exit
    ("could not acquire lock for <stdin>") when a signal, not the end of the input, stopped
    the process (systemd's default sends SIGTERM to every process of a service)."""

    def follow() -> None:
        pending = b""
        try:
            while chunk := os.read(wakes, 4096):
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    runner.wake(line.strip().decode(errors="replace") or None)
        except OSError:
            # The pipe is unusable (closed under us, a terminal hung up): the server is as good
            # as gone, and services that outlived it would run unwatched.
            log.exception("reading wakes from sodate up failed")
        log.info("sodate up has ended: finishing the current batches")
        runner.stop_event.set()
        runner.wake()

    threading.Thread(target=follow, name="sodate-wakes", daemon=True).start()

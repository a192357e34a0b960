"""Work the dashboard does after it starts serving: the what-if runs and the invoices take seconds each over a
large file, so they run one at a time on a background thread, in the order queued, and a page shows each
result when it is ready (and says what is still being computed, and since when, until then).

Owns: the queue and each job's state. Does not own: what a job computes (a function of
:mod:`talktime.app`) or how a page shows it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from talktime.errors import TalktimeError


@dataclass(slots=True)
class Job:
    """One queued computation: its label, when it was queued, started and ended, and its result or the
    error a reader should see."""

    label: str
    queued: float
    future: Future[Any]
    started: float | None = None
    ended: float | None = None
    error: str = ""
    result: Any = field(default=None)

    @property
    def done(self) -> bool:
        return self.ended is not None

    @property
    def state(self) -> str:
        if self.ended is not None:
            return "failed" if self.error else "done"
        return "running" if self.started is not None else "queued"

    def seconds(self) -> float:
        """How long it ran (so far, while it runs)."""
        if self.started is None:
            return 0.0
        return (self.ended or time.monotonic()) - self.started


class Jobs:
    """A single background worker and the jobs given to it, by key.

    The worker is a daemon thread: a server stopping (Ctrl-C, SIGTERM) does not wait for a rating that
    may take minutes, and :meth:`shutdown` drops what is still queued."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Job, Callable[[], Any]] | None] = queue.SimpleQueue()
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._stopped = False
        self._worker = threading.Thread(target=self._work, name="talktime-dashboard", daemon=True)
        self._worker.start()

    def submit(self, key: str, label: str, work: Callable[[], Any]) -> Job:
        """Queue ``work`` under ``key`` (once: a key already queued keeps its job). After :meth:`shutdown`
        the job is kept and never runs: its page says it is queued (a newer board replaces this one)."""
        with self._lock:
            found = self._jobs.get(key)
            if found is not None:
                return found
            job = Job(label, time.monotonic(), Future())
            self._jobs[key] = job
        if not self._stopped:
            self._queue.put((job, work))
        return job

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None or self._stopped:
                return
            job, work = item
            self._run(job, work)
            job.future.set_result(job.result)

    @staticmethod
    def _run(job: Job, work: Callable[[], Any]) -> None:
        job.started = time.monotonic()
        try:
            job.result = work()
        except TalktimeError as error:  # bad input a reader can act on: shown on the page
            job.error = str(error)
        except Exception as error:  # a failed job must say so on its page, not leave it waiting
            job.error = f"{type(error).__name__}: {error}"
        finally:
            job.ended = time.monotonic()

    def get(self, key: str) -> Job | None:
        return self._jobs.get(key)

    def states(self) -> dict[str, str]:
        return {key: job.state for key, job in self._jobs.items()}

    def shutdown(self) -> None:
        """Run nothing more that is queued (the job running ends on its own; nobody waits for it)."""
        self._stopped = True
        self._queue.put(None)

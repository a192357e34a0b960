"""Alerts checked by ``talktime serve --alerts FILE`` as events arrive (docs/alerts.md): after each new
snapshot of a tenant's records (:class:`~talktime.web.served.Snapshots`), the alerts open over it are
checked and each one not delivered before is POSTed (:func:`talktime.app.alerts.send_new_alerts`).

Two daemon threads of their own, so that neither a page nor a snapshot ever waits for a webhook:

* **The watcher**, every ``--dashboard-refresh`` seconds, reads each tenant's records mark
  (:func:`~talktime.app.snapshot.records_mark`) and asks for a snapshot of a tenant whose mark differs from
  its last snapshot's (or that has none yet, or whose last one is older than ``max_age``: calls the idle
  timeout closes), whether or not anyone looks at its pages.
* **The sender** checks the newest snapshot of each tenant handed to it (older ones waiting behind it are
  skipped: the newest has their records) over the rows the snapshot's rating made and the records it found
  still open (a call left open: they are not in its file), and posts; it may wait on the webhook's
  retries. The last check of a tenant is what its ``/alerts`` page shows.

Owns: when a tenant is checked and where. Does not own: the rules, the delivery and its state file
(:mod:`talktime.app.alerts`, :mod:`talktime.app.alert_delivery`), the snapshots.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import numpy as np

from talktime.app.alert_delivery import Post, post_json
from talktime.app.alerts import AlertSending, SentAlerts, send_new_alerts
from talktime.app.snapshot import records_mark, tenants_with_records
from talktime.core.alerts.config import AlertConfig
from talktime.web.jobs import Job
from talktime.web.served import Snapshots, TenantView

__all__ = ["ServedAlerts"]

LOG: Final = logging.getLogger("talktime.serve")
#: The job key the alerts page reads (:mod:`talktime.web.alerts`).
_JOB: Final = "alerts"


@dataclass(frozen=True, slots=True)
class _TenantSetup:
    """What the alerts page reads of the configuration: the tenant's own delivery state file; ``served``:
    the server checks and sends (not ``talktime alerts check --send``)."""

    path: Path
    config: AlertConfig
    state: Path | None
    served: bool = True


class _Checked:
    """The view's check, as the alerts page reads a job of its own (done: the check is its result)."""

    def __init__(self, job: Job) -> None:
        self._job = job

    def get(self, key: str) -> Job | None:
        return self._job if key == _JOB else None


class ServedAlerts:
    """The watcher and the sender of one server; :meth:`start` hooks them to ``snapshots``."""

    def __init__(
        self,
        snapshots: Snapshots,
        sending: AlertSending,
        *,
        post: Post = post_json,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.snapshots = snapshots
        self.sending = sending
        self._post, self._sleep = post, sleep
        self._lock = threading.Lock()
        self._newest: dict[str, tuple[TenantView, Job]] = {}  # made, not checked yet; the page's job
        self._made: dict[str, tuple[tuple[int, str], datetime]] = {}  # each tenant's last view: mark, as of
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._stopped = threading.Event()
        self.last: dict[str, SentAlerts] = {}  # each tenant's last check

    def start(self) -> None:
        self.snapshots.built.append(self._built)
        for name, work in (("talktime-alerts-watch", self._watch), ("talktime-alerts-send", self._send)):
            threading.Thread(target=work, name=name, daemon=True).start()

    def shutdown(self) -> None:
        """Stop both threads (a check waiting on the webhook ends on its own; nobody waits for it)."""
        self._stopped.set()
        self._queue.put(None)

    def _built(self, tenant: str, view: TenantView) -> None:
        """On the snapshot thread: hand the new view to the sender, at once; its alerts page says "being
        checked" until the check is done."""
        job = Job("alerts", time.monotonic(), Future())
        state: Any = getattr(view.app, "state", None)
        if state is not None:
            setup = _TenantSetup(self.sending.path, self.sending.config, self.sending.state(tenant))
            state.alerts = (setup, _Checked(job))
        with self._lock:
            self._newest[tenant] = (view, job)
            self._made[tenant] = (view.mark, view.as_of)
        self._queue.put(tenant)

    def look(self) -> None:
        """Ask for a new snapshot of each tenant whose records changed since its last one (a snapshot a page
        asked for counts: the thread making them checks the mark again and skips an unchanged one)."""
        options = self.snapshots.options
        for tenant in tenants_with_records(self.snapshots.store):
            with self._lock:
                made = self._made.get(tenant)
            if made is None or options.clock() - made[1] >= options.max_age:
                self.snapshots.view(tenant)
            elif records_mark(self.snapshots.store, tenant) != made[0]:
                self.snapshots.view(tenant)  # queues the new snapshot, unless one was looked for just now

    def _watch(self) -> None:
        every = self.snapshots.options.refresh.total_seconds()
        while not self._stopped.is_set():
            try:
                self.look()
            except Exception as error:  # a store that failed a read: said, and tried again
                LOG.warning("alerts: could not read the records' marks: %s: %s", type(error).__name__, error)
            self._stopped.wait(every)

    def _send(self) -> None:
        while (tenant := self._queue.get()) is not None:
            with self._lock:
                newest = self._newest.pop(tenant, None)
            if newest is None:  # a newer view of the tenant was checked already
                continue
            view, job = newest
            job.started = time.monotonic()
            try:
                job.result = self.check(tenant, view).check
            except Exception as error:  # said on the page and in the log; the next snapshot checks again
                job.error = f"{type(error).__name__}: {error}"
                LOG.warning("alerts: tenant %s: the check failed: %s", tenant, job.error)
            finally:
                job.ended = time.monotonic()

    def check(self, tenant: str, view: TenantView) -> SentAlerts:
        """Check ``view``'s alerts over the rows its rating made and its records still open, and POST the new
        ones."""
        board, options = view.board, self.snapshots.options
        rows = board.calls.rows(np.arange(board.calls.count, dtype=np.int64))
        sent = send_new_alerts(
            board.scan,
            options.costs,
            options.prices,
            self.sending,
            tenant=tenant,
            now=view.as_of,
            rated=(rows, board.currency),
            open_records=view.open_records,
            post=self._post,
            sleep=self._sleep,
        )
        with self._lock:
            self.last[tenant] = sent
        LOG.info(
            "alerts: tenant %s checked as of %s over %d calls: %d open, %d posted, %d not delivered (tried "
            "again by the next check)",
            tenant,
            view.as_of.isoformat(timespec="seconds"),
            sent.check.calls,
            len(sent.check.alerts),
            len(sent.posted),
            len(sent.undelivered),
        )
        return sent

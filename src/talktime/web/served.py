"""The dashboard served by ``talktime serve --costs CARD --prices CARD``: sign-in, each tenant's snapshot of
recent records (rated as a record file is), and who sees which pages (ADR 0008).

* **Sign-in.** ``/signin`` takes an API key in a form (POST: never in a URL, so never in a log or a
  browser's history) and answers with a cookie naming a session: a random token, HttpOnly, SameSite=Strict,
  Secure over HTTPS. The session holds the key's hash, and the key is looked up in the store on every
  request, as the API looks up a Bearer key: a revoked key signs its sessions out at once.
* **Snapshots.** An operator (a tenant key) sees the file-mode pages (:func:`talktime.web.app.create_app`)
  over a snapshot of the tenant's records of the last ``months`` UTC months, opened at the earliest local
  midnight of the oldest one among the price card's zones so that every customer's months are whole
  (:mod:`talktime.app.snapshot`), rated by the same code as ``talktime dashboard``. Snapshots are made on one
  background thread, one at a time: the store's SQL writes the snapshot file (no Python value per record
  here), and the rating (:func:`rated_board`) and the jobs that follow it (each customer's invoices and their
  calls, the what-if runs) run in a worker process, a new one per job, so that this process's interpreter
  stays free for pages. A page answers from the snapshot it has and never waits for one: the first look at a
  tenant shows a "being prepared" page until its first snapshot is ready. When a page is asked for and the
  snapshot is older than ``refresh``, the thread checks the store's marks
  (:func:`~talktime.app.snapshot.records_mark`, :func:`~talktime.app.snapshot.acceptances_mark`) and makes a
  new snapshot if a batch changed the tenant's records, if a person accepted a flagged record (its invoices
  count it), or if the old one is older than ``max_age`` (records the idle timeout closes without a new
  event); the new one replaces the old one when it is ready. Each page says "as of" when its records were
  read.
* **Customers.** A customer-scoped key sees the customer pages (:mod:`talktime.web.customer`) over the same
  snapshot: its own usage, calls, invoices and methodology, never another customer, never a cost or a
  margin; an operator page is 403.

Pages register for served mode by being routes of :func:`talktime.web.app.create_app` (operator pages:
they get the tenant's :class:`~talktime.web.data.Dashboard`, whose ``served`` says where it came from and
whose :attr:`Snapshots.store` is the tenant's store) or of :func:`talktime.web.customer.create_customer_app`.
"""

from __future__ import annotations

import gc
import html
import logging
import multiprocessing
import os
import pickle
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast, overload
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from talktime.core.rating.cards import CostCard, PriceCard
from talktime.errors import PayloadTooLargeError
from talktime.store.base import ApiKey, EventStore, hash_key
from talktime.web.data import Dashboard

if TYPE_CHECKING:
    from talktime.core.invoicing.invoice import Invoice, LineCall
    from talktime.core.plausibility import Accepted
    from talktime.store.record_files import OpenRecord

COOKIE: Final = "talktime_session"
SESSION_HOURS: Final = 12
MAX_FORM_BYTES: Final = 4096
#: A replaced snapshot's file is removed this long after (the next check of any tenant removes it).
RETIRED_SECONDS: Final = 600.0
#: Paths every visitor may load without signing in: the sign-in page and the static assets it uses.
_PUBLIC: Final = ("/signin", "/static/")
#: The server's log: a snapshot that fails is said there (a page shows the error only before the first).
LOG: Final = logging.getLogger("talktime.serve")


@dataclass(frozen=True, slots=True)
class ServedOptions:
    """How ``talktime serve`` shows the dashboard: the cards, the ledger, the window and the refresh."""

    costs: CostCard
    prices: PriceCard
    store_label: str
    ledger: Path | None = None
    guards: Path | None = None  # serve's --guards file, for the pages that apply limits
    months: int = 3
    refresh: timedelta = timedelta(seconds=60)
    max_age: timedelta = timedelta(minutes=15)
    idle_timeout: timedelta = timedelta(hours=1)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


@dataclass(slots=True)
class TenantView:
    """A tenant's rated snapshot: the board, the operator pages over it, and what the pages say of it."""

    tenant: str
    board: Dashboard
    app: ASGIApp | None  # None only while the view is being made
    as_of: datetime
    since: datetime  # when the window opens (UTC): every customer's months from then on are whole
    records: int
    still_open: int
    mark: tuple[int, str]
    seconds: float  # how long reading and rating took
    snapshots: Snapshots
    folder: Any = None  # the snapshot file's temporary folder: removed with the view
    accepted_mark: tuple[int, str] = (0, "")  # the acceptances when the records were read
    open_records: tuple[OpenRecord, ...] = ()  # the records still open, not in the file (stuck-call)

    def line(self) -> str:
        """The header line of every page: whose records, since when, as of when."""
        moment = self.as_of.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        since = self.since.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        text = f"Tenant {self.tenant} · {self.records:,} records started since {since}, as of {moment}"
        if self.still_open:
            text += f" ({self.still_open:,} still open, not shown until they end)"
        return text


@dataclass(slots=True)
class _State:
    view: TenantView | None = None
    checked: float = 0.0  # monotonic time of the last look at the store's mark
    queued: bool = False  # a look at the mark (and a new snapshot if it changed) is queued or running
    building_since: float | None = None  # a new snapshot is being made, since then
    error: str = ""


class Snapshots:
    """Every tenant's current :class:`TenantView`, made and replaced on one background thread."""

    def __init__(self, store: EventStore, options: ServedOptions) -> None:
        self.store = store
        self.options = options
        self._states: dict[str, _State] = {}
        self._lock = threading.Lock()
        self._pool = _DaemonWorker("talktime-snapshots")  # a stopping server waits for no snapshot
        self._retired: list[tuple[float, TenantView]] = []  # replaced views, their files removed later
        #: worker processes, started when first needed: "rating" makes boards, "jobs" runs their jobs (a new
        #: snapshot's rating never waits for an older board's what-if run)
        self._workers: dict[str, ProcessPoolExecutor] = {}
        self._stopped = False  # shut down: no worker process is started any more
        self.listed: Callable[..., object] | None = None  # the customer pages' calls of an invoice
        #: called with (tenant, view) on the snapshot thread after each new view is made: each must return
        #: at once (``talktime serve --alerts`` queues the alerts check, :mod:`talktime.web.served_alerts`)
        self.built: list[Callable[[str, TenantView], None]] = []

    def view(self, tenant: str) -> TenantView | None:
        """The tenant's current view (None before its first), never waiting: when it is older than
        ``refresh`` (or there is none), a check for newer records is queued."""
        with self._lock:
            state = self._states.setdefault(tenant, _State())
            now = time.monotonic()
            due = state.view is None or now - state.checked >= self.options.refresh.total_seconds()
            if due and not state.queued and not (state.view is None and state.error):
                state.checked = now
                state.queued = True
                if state.view is None:
                    state.building_since = now
                self._pool.submit(self._refresh, tenant)
            return state.view

    def updating(self, tenant: str) -> bool:
        state = self._states.get(tenant)
        return state is not None and state.building_since is not None and state.view is not None

    def waiting(self, tenant: str) -> tuple[float, str]:
        """Seconds the tenant's first snapshot has been in the making, and the error that stopped it."""
        state = self._states.get(tenant)
        if state is None:
            return 0.0, ""
        since = state.building_since
        return (0.0 if since is None else time.monotonic() - since), state.error

    def retry(self, tenant: str) -> None:
        with self._lock:
            state = self._states.get(tenant)
            if state is not None:
                state.error = ""

    def _refresh(self, tenant: str) -> None:
        from talktime.app.snapshot import acceptances_mark, records_mark

        state = self._states[tenant]
        self._remove_retired()
        try:
            old = state.view
            if old is not None:
                fresh = records_mark(self.store, tenant) == old.mark
                fresh = fresh and acceptances_mark(self.store, tenant) == old.accepted_mark  # an acceptance
                young = self.options.clock() - old.as_of < self.options.max_age
                if fresh and young:
                    return
                state.building_since = time.monotonic()
            view = self._build(tenant)
            with self._lock:
                state.view, state.error = view, ""
            for hook in self.built:
                hook(tenant, view)
            if old is not None:
                old.board.jobs.shutdown()
                self._retired.append((time.monotonic(), old))
        except Exception as error:  # shown on the page instead of a snapshot that never comes
            state.error = f"{type(error).__name__}: {error}"
            LOG.warning("the snapshot of tenant %s failed: %s", tenant, state.error)
        finally:
            with self._lock:
                state.queued = False
                state.building_since = None
                state.checked = time.monotonic()

    def _remove_retired(self, grace: float = RETIRED_SECONDS) -> None:
        """Remove the files of views replaced more than ``grace`` seconds ago (a request that began on one
        has long ended; its background jobs were cancelled when it was replaced)."""
        now = time.monotonic()
        for retired, view in [item for item in self._retired if now - item[0] >= grace]:
            self._retired.remove((retired, view))
            view.board.served = None  # no cycle left: the board and its pages go with the last reference
            if view.folder is not None:
                view.folder.cleanup()

    def _build(self, tenant: str) -> TenantView:
        import tempfile

        from talktime.app.guards import guards_of
        from talktime.app.history import HistorySource
        from talktime.app.snapshot import card_zones, take_snapshot
        from talktime.web.app import create_app
        from talktime.web.pages import _periods, what_ifs

        began = time.perf_counter()
        options = self.options
        as_of = options.clock()
        folder = tempfile.TemporaryDirectory(prefix="talktime-snapshot-")
        taken = take_snapshot(
            self.store,
            tenant,
            Path(folder.name) / "records.parquet",
            as_of=as_of,
            months=options.months,
            idle_timeout=options.idle_timeout,
            zones=card_zones(options.prices),  # every customer's months in the window whole
            limits=guards_of(options.guards).limits_for(tenant),  # the receipts only of what they hold
        )
        ledger = None if options.ledger is None else options.ledger / tenant
        rated = self._in_worker(
            "rating",
            rated_board,
            taken.path,
            options.costs,
            options.prices,
            ledger=ledger,
            guards=options.guards,
            source=f"{options.store_label} (tenant {tenant})",
            as_of=as_of,
            tenant=tenant,
            accepted=taken.accepted,  # the HELD marks count an accepted record, as the invoices do
        )()
        board = board_of(rated)
        view = TenantView(
            tenant,
            board,
            None,
            as_of,
            taken.since,
            taken.records,
            taken.still_open,
            taken.mark,
            0.0,
            self,
            folder,
            taken.accepted_mark,
            taken.open_records,
        )
        board.served = view  # before the pages are made: the overview is drawn once, with this line
        listed = self.listed
        worked: dict[str, dict[str, tuple[list[str], list[bytes]]]] = {}  # customer -> its calls, pickled
        for customer, periods in _periods(board).items():  # first: the customer pages read them
            work = self._in_worker(
                "jobs",
                invoices_and_calls,
                taken.path,
                options.prices,
                customer,
                periods,
                ledger=ledger,
                guards=options.guards,
                now=as_of,
                tenant=tenant,
                accepted=taken.accepted,  # a record a person accepted counts, as on GET /v1/invoices
                calls=listed is not None,
            )
            board.jobs.submit(
                f"invoices:{customer}", f"{customer}'s invoices", _keeping(work, worked, customer)
            )
        if listed is not None:  # then each customer's calls of each month, for the customer pages
            for customer in _periods(board):
                job = board.jobs.get(f"invoices:{customer}")
                calls = _calls_of(job, worked, customer, listed)
                board.jobs.submit(f"customer-calls:{customer}", f"{customer}'s calls", calls)
        # then the what-if runs (pages.what_ifs: the keys and labels queue_work would give them), each in a
        # worker process too
        for key, label, work, args, kwargs in what_ifs(
            board.choices, HistorySource(taken.path), options.costs, options.prices
        ):
            board.jobs.submit(key, label, self._in_worker("jobs", work, *args, **kwargs))
        view.app = create_app(board)  # queues the rest of the work (a job queued above is kept)
        view.seconds = time.perf_counter() - began
        return view

    def _in_worker(self, pool: str, work: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], Any]:
        """``work(*args, **kwargs)`` as a job that runs it in a worker process of ``pool`` (one at a
        time, a new process for each job, so that its memory is returned when it ends) and waits for its
        answer: the rating's millions of Python values are made there, under that process's interpreter
        lock, not under the one this process's pages need. A worker that died (killed for memory, say)
        fails the job with the reason; the next job starts a new one."""

        def job() -> Any:
            with self._lock:
                if self._stopped:  # a job begun as the server stopped starts no process to wait for
                    raise RuntimeError("the server stopped")
                workers = self._workers.get(pool)
                if workers is None:
                    workers = self._workers[pool] = ProcessPoolExecutor(
                        max_workers=1,
                        max_tasks_per_child=1,  # a new process per job: a rating's memory goes with it
                        mp_context=multiprocessing.get_context("spawn"),  # never a fork of a DuckDB holder
                        initializer=_start_worker,
                        initargs=(os.getpid(),),
                    )
            try:
                return workers.submit(work, *args, **kwargs).result()
            except BrokenProcessPool:
                with self._lock:
                    if self._stopped:  # its worker was killed by the shutdown, not for memory
                        raise RuntimeError("the server stopped") from None
                    if self._workers.get(pool) is workers:
                        del self._workers[pool]
                raise RuntimeError(
                    "the rating's worker process stopped (out of memory?); the next snapshot tries again"
                ) from None

        return job

    def shutdown(self) -> None:
        self._pool.shutdown()
        for state in self._states.values():
            if state.view is not None:
                state.view.board.jobs.shutdown()
        with self._lock:
            self._stopped = True
            pools, self._workers = list(self._workers.values()), {}
        for workers in pools:  # a stopping server waits for no rating: its workers are stopped, not joined
            for process in list(getattr(workers, "_processes", {}).values()):
                process.kill()
            workers.shutdown(wait=False, cancel_futures=True)


def rated_board(
    records: Path,
    costs: CostCard,
    prices: PriceCard,
    *,
    ledger: Path | None,
    guards: Path | None,
    source: str,
    as_of: datetime,
    tenant: str | None = None,
    accepted: Mapping[str, Accepted] | None = None,
) -> dict[str, bytes]:
    """In the worker process: the snapshot file rated as ``talktime dashboard`` rates a file
    (:func:`talktime.web.data.load`), each part of the board pickled on its own, so that the server
    unpickles them one at a time (a page waits for one part at most, not for the whole board). ``tenant``
    and ``accepted`` (the snapshot's acceptances): the HELD marks judged as the snapshot's invoices are."""
    from talktime.web.data import load

    board = load(
        records,
        costs,
        prices,
        ledger=ledger,
        guards=guards,
        source=source,
        as_of=as_of,
        collect=False,
        tenant=tenant,
        accepted=accepted,
    )
    board.jobs.shutdown()
    if board.scan != records:  # a copy in the worker's own folder, which goes with it
        raise RuntimeError(f"{records}: the snapshot file cannot be scanned as it is")
    return {name: pickle.dumps(getattr(board, name), protocol=5) for name in _BOARD_PARTS}


#: The :class:`~talktime.web.data.Dashboard` fields a worker sends back: not its jobs, folder or view, nor
#: its records (an Arrow table of every record and an index of every call: read again from the file here,
#: mostly outside the interpreter lock, rather than unpickled under it in one go).
_BOARD_PARTS: Final = tuple(
    name for name in Dashboard.__dataclass_fields__ if name not in ("jobs", "folder", "served", "records")
)


def board_of(parts: dict[str, bytes]) -> Dashboard:
    """The board :func:`rated_board` sent, with jobs of its own. The cycle collector is off while its parts
    are made: their new objects would start collections that walk every live object (the current board's
    too) again and again; one pass over the young objects follows, and the board has no cycle of its own
    (it goes by reference counting when a newer one replaces it)."""
    from talktime.app.calls import CallRecords

    collecting = gc.isenabled()
    gc.disable()
    try:
        fields = {name: pickle.loads(parts.pop(name)) for name in _BOARD_PARTS}
        fields["records"] = CallRecords(fields["scan"])
    finally:
        if collecting:
            gc.enable()
    return Dashboard(**fields)


def _start_worker(server: int) -> None:
    """In the worker process: leave when the server is gone (killed without its shutdown running)."""

    def watch() -> None:
        while os.getppid() == server:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="watch-server", daemon=True).start()


#: Calls of an invoice pickled together: the server unpickles them a chunk at a time, so that a page waits
#: for one chunk at most (a few milliseconds), not for a large customer's month.
CALLS_CHUNK: Final = 5000


def invoices_and_calls(
    path: Path,
    prices: PriceCard,
    customer: str,
    periods: list[str],
    *,
    calls: bool,
    **options: Any,
) -> tuple[dict[str, Any], dict[str, tuple[list[str], list[bytes]]]]:
    """In the worker process: the customer's invoices over the snapshot file
    (:func:`~talktime.app.snapshot.customer_invoices_of_file`, given ``options``), and with ``calls`` the
    calls of each (:func:`talktime.web.customer.calls_of`: a Python value per call, made here rather than
    under the server's interpreter lock), each month's pickled in chunks of :data:`CALLS_CHUNK`."""
    from talktime.app.snapshot import customer_invoices_of_file
    from talktime.web.customer import calls_of

    invoices = customer_invoices_of_file(path, prices, customer, periods, **options)
    worked: dict[str, tuple[list[str], list[bytes]]] = {}
    for period, invoice in invoices.items() if calls else ():
        meters, rows = calls_of(invoice)
        chunks = [
            pickle.dumps(rows[i : i + CALLS_CHUNK], protocol=5) for i in range(0, len(rows), CALLS_CHUNK)
        ]
        worked[period] = (meters, chunks)
    return {period: packed(invoice) for period, invoice in invoices.items()}, worked


class PackedCalls(Sequence["LineCall"]):
    """A usage line's calls as a served dashboard keeps them: pickled together, one bytes object, unpacked
    when a page reads them (an invoice's PDF appendix, its calls CSV). Each call is a record of the line
    (about two million at 10 million events); kept as objects, every full collection of the server's cycle
    collector walked them all, with every thread stopped (0.2-0.8 s at 10M). Equal to the tuple of its calls.
    """

    __slots__ = ("_blob", "_count")

    def __init__(self, blob: bytes, count: int) -> None:
        self._blob = blob
        self._count = count

    @classmethod
    def of(cls, calls: Sequence[LineCall]) -> PackedCalls:
        return cls(pickle.dumps(tuple(calls), protocol=5), len(calls))

    def _calls(self) -> tuple[LineCall, ...]:
        unpacked: tuple[LineCall, ...] = pickle.loads(self._blob)
        return unpacked

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def __iter__(self) -> Iterator[LineCall]:
        return iter(self._calls())

    @overload
    def __getitem__(self, index: int) -> LineCall: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[LineCall, ...]: ...
    def __getitem__(self, index: int | slice) -> LineCall | tuple[LineCall, ...]:
        return self._calls()[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PackedCalls | tuple):
            return self._calls() == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to a tuple, so not hashable as itself

    def __reduce__(self) -> tuple[type[PackedCalls], tuple[bytes, int]]:
        return PackedCalls, (self._blob, self._count)

    def __repr__(self) -> str:
        return f"PackedCalls({self._count} calls)"


def packed(invoice: Invoice) -> Invoice:
    """The invoice with each usage line's calls packed (:class:`PackedCalls`): equal to it, read as it is."""
    lines = tuple(
        replace(line, calls=cast("tuple[LineCall, ...]", PackedCalls.of(line.calls))) if line.calls else line
        for line in invoice.lines
    )
    return replace(invoice, lines=lines)


def _keeping(work: Callable[[], Any], worked: dict[str, Any], customer: str) -> Callable[[], dict[str, Any]]:
    """The invoices job: its answer is the invoices; the calls that came with them wait in ``worked`` for
    the customer's calls job."""

    def job() -> dict[str, Any]:
        invoices, calls = work()
        worked[customer] = calls
        return invoices  # type: ignore[no-any-return]

    return job


def _calls_of(
    job: Any,
    worked: dict[str, dict[str, tuple[list[str], list[bytes]]]],
    customer: str,
    listed: Callable[..., object],
) -> Callable[[], int]:
    """Hand the calls of each invoice of a customer's invoices job (queued after it: done by then) to the
    customer pages, as the worker worked them out: unpickled a chunk at a time, the interpreter let go
    between chunks. Each chunk's calls are plain tuples (:data:`~talktime.web.customer.CallRow`): a
    collection of the youngest objects after each chunk stops tracking them (a few milliseconds), so they
    never reach the older generations, whose full collections would otherwise walk every one of them, with
    every thread stopped, for as long as the board is served (at 10 million events, half a million calls:
    pauses of hundreds of milliseconds in the pages). An invoice that came without them (none did) has them
    worked out here."""

    def work() -> int:
        invoices = {} if job is None or job.result is None else job.result
        calls = worked.pop(customer, {})
        for period, invoice in invoices.items():
            if period not in calls:
                listed(invoice)
                continue
            meters, chunks = calls[period]
            rows: list[Any] = []
            collecting = gc.isenabled()
            gc.disable()
            try:
                for chunk in chunks:
                    rows.extend(pickle.loads(chunk))
                    gc.collect(0)  # the chunk's tuples untracked while they are the youngest objects
                    time.sleep(0)  # a page's thread may take the interpreter here
            finally:
                if collecting:
                    gc.enable()
            listed(invoice, (meters, rows))
        return len(invoices)

    return work


class _DaemonWorker:
    """One daemon thread running the callables given to it in turn (a ThreadPoolExecutor's threads are
    joined when the interpreter exits: a server stopping would wait minutes for a snapshot being made)."""

    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        threading.Thread(target=self._work, name=name, daemon=True).start()

    def submit(self, work: Callable[..., None], *args: Any) -> None:
        self._queue.put(lambda: work(*args))

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            item()

    def shutdown(self) -> None:
        self._queue.put(None)


@dataclass(slots=True)
class _Session:
    key_hash: str
    expires: float


class Sessions:
    """Signed-in browsers: a random token (the cookie) -> the key's hash, for ``SESSION_HOURS``."""

    def __init__(self) -> None:
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()

    def start(self, key_hash: str) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = time.monotonic()
            self._sessions = {t: s for t, s in self._sessions.items() if s.expires > now}
            self._sessions[token] = _Session(key_hash, now + SESSION_HOURS * 3600)
        return token

    def key_hash(self, token: str | None) -> str | None:
        if not token:
            return None
        with self._lock:
            found = self._sessions.get(token)
        if found is None or found.expires <= time.monotonic():
            return None
        return found.key_hash

    def end(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._sessions.pop(token, None)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    """A page outside the dashboard's layout (sign-in, waiting, refused), plain and self-contained."""
    return HTMLResponse(
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{html.escape(title)} · talktime</title><link rel="icon" href="data:,">'
        '<link rel="stylesheet" href="/static/dashboard.css"></head>'
        f'<body><main id="main" class="signin">{body}</main></body></html>',
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def _signin_form(message: str = "") -> HTMLResponse:
    """The form; a refused key gets it again with the reason (200: the form is the answer, and the browser
    keeps its console clean)."""
    error = f'<p class="error" role="alert">{html.escape(message)}</p>' if message else ""
    return _page(
        "Sign in",
        "<h1>talktime: sign in</h1>"
        "<p>Paste your API key: a tenant key opens the operator's pages, a customer key your own usage, "
        "calls and invoices. The key is sent once, in this form's body; the browser then keeps only a "
        f"session cookie.</p>{error}"
        '<form method="post" action="/signin">'
        '<label for="key">API key</label>'
        '<input id="key" name="key" type="password" autocomplete="off" required spellcheck="false">'
        '<p><button type="submit">Sign in</button></p></form>',
    )


class ServedDashboard:
    """The ASGI app ``talktime serve`` mounts under its API: every path the API does not answer."""

    def __init__(self, store: EventStore, options: ServedOptions) -> None:
        from talktime.web.app import plotly_js
        from talktime.web.customer import create_customer_app

        self._plotly = plotly_js()  # a missing plotly stops serve before it starts, as it stops dashboard
        self.store = store
        self.options = options
        self.snapshots = Snapshots(store, options)
        self.sessions = Sessions()
        self._customer_app = create_customer_app(self.snapshots)
        self.snapshots.listed = self._customer_app.state.listed
        self._static: ASGIApp | None = None

    def _static_app(self) -> ASGIApp:
        if self._static is None:
            from importlib.resources import files

            from starlette.staticfiles import StaticFiles

            self._static = StaticFiles(directory=str(files("talktime.web").joinpath("static")))
        return self._static

    def signed_in(self, request: Request) -> ApiKey | None:
        """The signed-in key as the store knows it now, or None (no session, unknown or revoked key)."""
        key_hash = self.sessions.key_hash(request.cookies.get(COOKIE))
        if key_hash is None:
            return None
        found = self.store.key_of(key_hash)
        if found is None or found.revoked_at is not None or found.admin:
            return None
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        request = Request(scope, receive)
        if forbidden_api_path(path):  # the API's paths are the API's: an unknown one is its JSON 404
            body = b'{"error":{"category":"not_found","message":"Not Found"}}'
            await Response(body, 404, media_type="application/json")(scope, receive, send)
            return
        if path.startswith("/static/"):
            scope = {**scope, "path": path.removeprefix("/static"), "root_path": ""}
            await self._static_app()(scope, receive, send)
            return
        if path == "/static-lib/plotly.min.js":  # Plotly's bundle, as file mode serves it
            bundle = FileResponse(
                self._plotly, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"}
            )
            await bundle(scope, receive, send)
            return
        if path == "/signin":
            answer = await self._signin(request)
        elif path == "/signout":
            answer = self._signout(request)
        else:
            key = self.signed_in(request)
            if key is None:
                answer = RedirectResponse("/signin", status_code=303)
            else:
                scope.setdefault("state", {})["tenant"] = key.tenant  # the access line names it
                if request.method == "POST":  # a form of this session's pages, or a 403 page
                    from talktime.web.review_forms import check_post

                    refused, receive = await check_post(request, key)
                    if refused is not None:
                        await refused(scope, receive, send)
                        return
                await self._signed_in(key, scope, receive, send)
                return
        await answer(scope, receive, send)

    async def _signed_in(self, key: ApiKey, scope: Scope, receive: Receive, send: Send) -> None:
        view = self.snapshots.view(key.tenant)
        if view is None:
            await self._preparing(key.tenant)(scope, receive, send)
        elif key.customer is not None:
            scope["state"]["view"] = view
            scope["state"]["customer"] = key.customer
            await self._customer_app(scope, receive, send)
        else:
            assert view.app is not None
            await view.app(scope, receive, send)

    def _preparing(self, tenant: str) -> Response:
        seconds, error = self.snapshots.waiting(tenant)
        if error:
            self.snapshots.retry(tenant)
            return _page(
                "Not ready",
                f"<h1>The dashboard could not be prepared</h1><p class='error'>{html.escape(error)}</p>"
                "<p>Reload the page to try again.</p>",
            )
        months = self.options.months
        body = (
            '<h1>Preparing the dashboard</h1><p role="status">Reading and rating your records of the last '
            f"{months} month{'s' if months != 1 else ''} from the store: {seconds:.0f} s so far. This page "
            "reloads by itself every 2 seconds; after this first time, pages answer from the last rating "
            "while newer records are rated in the background.</p>"
        )
        answer = _page("Preparing", body)
        answer.headers["Refresh"] = "2"
        return answer

    async def _signin(self, request: Request) -> Response:
        if request.method == "GET":
            return _signin_form()
        if request.method != "POST":
            return Response(status_code=405, headers={"Allow": "GET, POST"})
        from talktime.api.bodies import limited_body

        try:
            body = await limited_body(request, MAX_FORM_BYTES)
        except PayloadTooLargeError:
            return _signin_form("That is not an API key (too long).")
        fields = parse_qs(body.decode("utf-8", "replace"))
        key = (fields.get("key") or [""])[0].strip()
        found = self.store.key_of(hash_key(key)) if key else None
        if found is None or found.revoked_at is not None:
            return _signin_form("This key is not known, or it was revoked.")
        if found.admin:
            return _signin_form(
                "An admin key manages keys and reads no tenant's usage: sign in with a tenant or a customer "
                "key."
            )
        answer = RedirectResponse("/", status_code=303)
        answer.set_cookie(
            COOKIE,
            self.sessions.start(hash_key(key)),
            max_age=SESSION_HOURS * 3600,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return answer

    def _signout(self, request: Request) -> Response:
        if request.method != "POST":
            return Response(status_code=405, headers={"Allow": "POST"})
        self.sessions.end(request.cookies.get(COOKIE))
        answer = RedirectResponse("/signin", status_code=303)
        answer.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return answer

    def shutdown(self) -> None:
        self.snapshots.shutdown()


def forbidden_api_path(path: str) -> bool:
    """Paths of the API's own (``/v1/...``): never the dashboard's, so an unknown one stays a JSON 404."""
    return path == "/v1" or path.startswith("/v1/")


__all__ = ["COOKIE", "ServedDashboard", "ServedOptions", "Snapshots", "TenantView"]

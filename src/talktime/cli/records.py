"""``talktime records rebuild``: re-derive every stored usage record from the stored events; ``records
flagged|accept|correct``: the records the plausibility guards hold back, and a person's review of them (on
the store itself, or through the ``talktime serve`` that holds it, with the tenant's key in TALKTIME_KEY)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from talktime.cli.guard import guarded
from talktime.cli.history import STORE_HELP

records_app = typer.Typer(help="The usage records an event store keeps beside its events.")


@records_app.command("rebuild")
def rebuild(store: str = typer.Option(..., "--store", help=STORE_HELP)) -> None:
    """Re-derive every record of every tenant from the events, in one transaction (the records kept
    batch by batch are the same; this is for a store whose rules changed, or to check)."""

    def run() -> None:
        from talktime.app.served import held_by_server
        from talktime.errors import InputError
        from talktime.store import open_store

        server = held_by_server(store)
        if server is not None:
            raise InputError(f"--store {store!r} is held by talktime serve at {server}: stop it to rebuild")
        opened = open_store(store)
        try:
            began = time.perf_counter()
            count = opened.rebuild_records()  # type: ignore[attr-defined]  # both stores keep records
            typer.echo(f"rebuilt {count} records in {time.perf_counter() - began:.1f} s")
        finally:
            opened.close()

    guarded(run)


# --- flagged records and their review (docs/guards.md) ----------------------------------------------------

GUARDS_OPTION = typer.Option(
    None, "--guards", help="Plausibility limits (TOML; docs/guards.md); default: the safe defaults."
)
TENANT = typer.Option(..., "--tenant", help="The tenant whose records --store holds.")
NOTE = typer.Option(None, "--note", help="Why: kept with the review.")


def _through_server(url: str, store: str, tenant: str, method: str, path: str, body: Any = None) -> Any:
    """A route of the server holding ``store``, with the tenant's key from TALKTIME_KEY (its tenant must be
    ``tenant``: checked on an empty listing before anything is changed)."""
    import json
    import os
    import urllib.error
    import urllib.parse
    import urllib.request

    from talktime.app.served import KEY_VARIABLE
    from talktime.errors import InputError

    key = os.environ.get(KEY_VARIABLE, "").strip()
    where = f"--store {store!r} is held by talktime serve at {url}"
    if not key:
        raise InputError(f"{where}; put tenant {tenant!r}'s API key in {KEY_VARIABLE} (or stop the server)")

    def call(verb: str, route: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        request = urllib.request.Request(f"{url}{route}", data=data, headers=headers, method=verb)
        try:
            with urllib.request.urlopen(request, timeout=600) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as error:
            try:
                message = json.loads(error.read())["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = str(error)
            raise InputError(f"{where}; it answered {error.code}: {message}") from None
        except (urllib.error.URLError, OSError) as error:
            raise InputError(f"{where}; it could not be reached: {error}") from None

    owner = call("GET", "/v1/flagged?" + urllib.parse.urlencode({"to": "1970-01-01T00:00:00Z"}))["tenant"]
    if owner != tenant:
        raise InputError(
            f"{where}; the key in {KEY_VARIABLE} is tenant {owner!r}'s, not --tenant {tenant!r}'s"
        )
    return call(method, path, body)


def _review(
    store: str,
    tenant: str,
    record_id: str,
    action: str,
    fields: dict[str, Any],
    note: str | None,
    guards: Path | None,
) -> dict[str, Any]:
    import urllib.parse
    from datetime import UTC, datetime

    from talktime.app.review import review
    from talktime.app.served import held_by_server
    from talktime.store import open_store

    server = held_by_server(store)
    if server is not None:
        body = {"action": action, "note": note, **({"fields": fields} if fields else {})}
        route = f"/v1/reviews/{urllib.parse.quote(record_id, safe='/')}"
        answer: dict[str, Any] = _through_server(server, store, tenant, "POST", route, body)
        return answer
    opened = open_store(store)
    try:
        return review(
            opened,
            tenant,
            guards,
            record_id,
            action,
            fields=fields,
            note=note,
            at=datetime.now(UTC),
        ).as_dict()
    finally:
        opened.close()


def _print_review(answer: dict[str, Any]) -> None:
    state = "still held back" if answer["held"] else "counted"
    typer.echo(f"record {answer['id']}: {answer['action']}ed; {state}")
    for reason in answer["reasons"]:
        typer.echo(f"  {reason}")


@records_app.command("flagged")
def flagged_command(
    store: str = typer.Option(..., "--store", help=STORE_HELP),
    tenant: str = TENANT,
    guards: Path | None = GUARDS_OPTION,
    output: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """The tenant's records the guards flag: held back (not in usage or invoices) until a person accepts
    or corrects them, and those accepted, each with its reasons."""

    def run() -> None:
        import json
        from datetime import UTC, datetime

        from talktime.app.review import flagged
        from talktime.app.served import held_by_server
        from talktime.errors import InputError
        from talktime.store import open_store

        if output not in ("table", "json"):
            raise InputError(f"--format: {output!r} is not table or json")
        server = held_by_server(store)
        if server is not None:
            found = _through_server(server, store, tenant, "GET", "/v1/flagged")
        else:
            opened = open_store(store)
            try:
                found = flagged(opened, tenant, guards, datetime.now(UTC)).as_dict()
            finally:
                opened.close()
        if output == "json":
            typer.echo(json.dumps(found, indent=2))
            return
        typer.echo(f"{len(found['held'])} record(s) held back, {len(found['accepted'])} accepted")
        for state in ("held", "accepted"):
            for item in found[state]:
                who = item["customer"] or "-"
                typer.echo(f"{state:<8} {item['id']}  customer {who}  started {item['started_at']}")
                for reason in item["reasons"]:
                    typer.echo(f"           {reason}")

    guarded(run)


@records_app.command("accept")
def accept_command(
    record_id: str = typer.Argument(..., help="The record's id."),
    store: str = typer.Option(..., "--store", help=STORE_HELP),
    tenant: str = TENANT,
    note: str | None = NOTE,
    guards: Path | None = GUARDS_OPTION,
) -> None:
    """Accept a flagged record as it is: its present reasons, word for word (a change that breaks another
    limit, or the same by another amount, holds it back again)."""
    guarded(lambda: _print_review(_review(store, tenant, record_id, "accept", {}, note, guards)))


@records_app.command("correct")
def correct_command(
    record_id: str = typer.Argument(..., help="The record's id."),
    store: str = typer.Option(..., "--store", help=STORE_HELP),
    tenant: str = TENANT,
    set_: list[str] = typer.Option(
        ..., "--set", help="FIELD=VALUE, as the record format reads it (empty: absent)."
    ),
    note: str | None = NOTE,
    guards: Path | None = GUARDS_OPTION,
) -> None:
    """Correct a record's fields (kept as a correction event: the record is re-derived and checked again)."""

    def run() -> None:
        from talktime.errors import InputError

        fields: dict[str, Any] = {}
        for item in set_:
            name, sep, value = item.partition("=")
            if not sep or not name.strip():
                raise InputError(f"--set {item!r}: write FIELD=VALUE, e.g. ended_at=2025-03-01T10:10:00Z")
            fields[name.strip()] = value if value.strip() else None
        _print_review(_review(store, tenant, record_id, "correct", fields, note, guards))

    guarded(run)

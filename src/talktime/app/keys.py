"""API keys made, listed, revoked and rotated: the use cases of ``talktime keys`` and ``/v1/admin/keys``,
and the store the CLI opens for them (:func:`key_store`).

A key is ``tt_`` and 32 random bytes, shown once when it is made; the store keeps only its sha256 (see
``talktime.store.base``) and a public id (``k_`` and 12 hex digits of the hash) to list and revoke it by.
Three roles: a tenant key reads and writes that tenant's usage; a customer-scoped key (``--tenant T
--customer C``) reads only customer C's usage, records and invoices of tenant T (the customer's own view,
ADR 0008), and writes nothing; an admin key (``--admin``, tenant :data:`~talktime.store.base.ADMIN_TENANT`)
manages every tenant's keys and reads no usage.

Revocation takes effect at once: the server looks a key up in the store on every request (no cache of
keys), so a key revoked by any process sharing the store (the CLI on a PostgreSQL store, another server,
the admin route) is refused on the next request.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from talktime.errors import ConflictError, InputError, NotFoundError
from talktime.store.base import ADMIN_TENANT, ApiKey, EventStore, hash_key, new_key

_CONTROL: Final = r"\x00-\x1f\x7f\x85\u2028\u2029"
_BLANK: Final = _CONTROL + r"\x20\xa0\u1680\u2000-\u200a\u202f\u205f\u3000\ufeff"
#: A tenant name: 1-200 characters, no control characters or line breaks, no blank ends, not in the
#: reserved ``talktime:`` namespace. Spelled out (no ``\s`` or ``.``) so that Python and ECMA-262 regular
#: expressions, the OpenAPI document's, read it alike.
TENANT_PATTERN: Final = rf"^(?!talktime:)[^{_BLANK}](?:[^{_CONTROL}]{{0,198}}[^{_BLANK}])?$"
_TENANT: Final = re.compile(TENANT_PATTERN)
LABEL_MAX: Final = 200


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key just made: the key itself (shown once), what the store lists of it, and the key it replaced."""

    key: str
    info: ApiKey
    replaces: ApiKey | None = None

    def as_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"key": self.key, "info": key_dict(self.info)}
        if self.replaces is not None:
            answer["replaces"] = key_dict(self.replaces)
        return answer


def check_tenant(tenant: str) -> str:
    if not _TENANT.fullmatch(tenant):
        raise InputError(
            f"tenant {tenant!r}: must be 1-200 characters, without control characters, line breaks or blank "
            "ends, and not start with 'talktime:' (reserved)"
        )
    return tenant


#: A customer of a customer-scoped key: 1-200 characters, no control characters or line breaks (spelled
#: out, as :data:`TENANT_PATTERN`, for the OpenAPI document's regular expressions too).
CUSTOMER_PATTERN: Final = rf"^[^{_CONTROL}]{{1,200}}$"
_CUSTOMER: Final = re.compile(CUSTOMER_PATTERN)


def check_customer(customer: str) -> str:
    """A customer id as the records carry it: 1-200 characters on one line, without control characters."""
    if not _CUSTOMER.fullmatch(customer):
        raise InputError(
            f"customer {customer!r}: must be 1-200 characters, without control characters or line breaks"
        )
    return customer


def check_label(label: str | None) -> str | None:
    if label is not None and (len(label) > LABEL_MAX or "\n" in label):
        raise InputError(f"label: at most {LABEL_MAX} characters on one line")
    return label or None


def create_key(
    store: EventStore,
    tenant: str | None,
    *,
    label: str | None = None,
    admin: bool = False,
    customer: str | None = None,
) -> NewKey:
    """A new key for ``tenant`` (or an admin key: ``admin`` and no tenant; or a key of one ``customer`` of
    the tenant)."""
    if admin:
        if tenant is not None:
            raise InputError("an admin key belongs to no tenant: give --admin or a TENANT, not both")
        if customer is not None:
            raise InputError("an admin key belongs to no customer: give --admin or --customer, not both")
        owner = ADMIN_TENANT
    elif tenant is None:
        raise InputError("give the TENANT the key is for (or --admin for an admin key)")
    else:
        owner = check_tenant(tenant)
    scoped = None if customer is None else check_customer(customer)
    key = new_key()
    made = store.add_key(owner, hash_key(key), label=check_label(label), admin=admin, customer=scoped)
    return NewKey(key, made)


def list_keys(store: EventStore, tenant: str | None = None) -> list[ApiKey]:
    return store.list_keys(None if tenant is None else check_tenant(tenant))


def _known(store: EventStore, key_id: str) -> ApiKey:
    found = next((k for k in store.list_keys() if k.id == key_id), None)
    if found is None:
        raise NotFoundError(f"no key with id {key_id!r} (see talktime keys list)")
    return found


def revoke_key(store: EventStore, key_id: str, now: datetime) -> ApiKey:
    """Revoke a key from now on; revoking it again keeps its first revocation time."""
    revoked = store.revoke_key(key_id, now)
    if revoked is None:
        raise NotFoundError(f"no key with id {key_id!r} (see talktime keys list)")
    return revoked


def rotate_key(store: EventStore, key_id: str, now: datetime) -> NewKey:
    """A new key for the same tenant, label, role and customer, and the old one revoked, in one
    transaction."""
    key = new_key()
    made = store.rotate_key(key_id, hash_key(key), now)
    if made is None:
        old = _known(store, key_id)  # 404 when unknown
        raise ConflictError(f"key {key_id!r} was revoked at {old.revoked_at}; make a new one instead")
    old = _known(store, key_id)
    return NewKey(key, made, old)


def key_dict(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "tenant": key.tenant,
        "label": key.label,
        "admin": key.admin,
        "created_at": key.created_at.isoformat(),
        "revoked_at": None if key.revoked_at is None else key.revoked_at.isoformat(),
        "customer": key.customer,
    }


@contextmanager
def key_store(target: str) -> Iterator[EventStore]:
    """The store ``target`` names, opened to manage its keys and closed after; refused while ``talktime
    serve`` holds it (DuckDB: even DuckDB's own error would only say "lock"), naming the admin routes."""
    from talktime.app.served import held_by_server
    from talktime.app.stores import opened_store

    server = held_by_server(target)
    if server is not None:
        raise InputError(
            f"--store {target!r} is held by talktime serve at {server}: manage keys through its admin "
            f"routes with an admin key (GET /v1/admin/keys, POST /v1/admin/keys, "
            f"POST /v1/admin/keys/KEY_ID/revoke or /rotate), or stop the server; make the admin key "
            f"before starting it (talktime keys create --admin --store {target})"
        )
    with opened_store(target) as opened:
        yield opened

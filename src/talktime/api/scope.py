"""Who a request reads for: a tenant key reads its tenant, a customer-scoped key only its customer.

A customer-scoped key (``talktime keys create --tenant T --customer C``) is the customer's own view of a
platform (ADR 0008): it reads ``GET /v1/usage``, ``GET /v1/records`` (and one record) and the invoices of
customer C only, and nothing else (403). Asking for another customer is 403, naming the key's customer;
asking for none is asking for its own. A record of another customer answers 404, as another tenant's
does: an id says nothing of whether it exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from talktime.errors import ForbiddenError


@dataclass(frozen=True, slots=True)
class Reader:
    """The tenant a request reads, and the one customer it is limited to (None: every customer)."""

    tenant: str
    customer: str | None = None

    def customer_asked(self, asked: str | None) -> str | None:
        """The customer a read is narrowed to: the one asked for, or the key's own; another customer than
        the key's is :class:`ForbiddenError` (403)."""
        if self.customer is None:
            return asked
        if asked is not None and asked != self.customer:
            raise ForbiddenError(
                f"this key reads only the usage, records and invoices of customer {self.customer!r}, "
                f"not of {asked!r}"
            )
        return self.customer

    def sees(self, customer: str | None) -> bool:
        """Whether a record of ``customer`` is this reader's to see."""
        return self.customer is None or customer == self.customer

"""Charge models, one module each (Lago's shape): each turns usage quantities into an amount and the
breakdown of how it was reached. See ``base.py`` for the tier-edge and zero-usage conventions.

Owns: the arithmetic of pricing. Does not own: which records a price applies to (``cards.py``), currencies
(``money.py``) or rounding (invoices).
"""

from talktime.core.rating.charges.base import Charge, ChargeModel, ChargeStep, pro_rata
from talktime.core.rating.charges.flat_fee import FlatFee
from talktime.core.rating.charges.graduated import Graduated
from talktime.core.rating.charges.included import Included
from talktime.core.rating.charges.minimum_commitment import MinimumCommitment
from talktime.core.rating.charges.package import Package
from talktime.core.rating.charges.per_attempt import PerAttempt
from talktime.core.rating.charges.per_unit import PerUnit
from talktime.core.rating.charges.tiers import Tier
from talktime.core.rating.charges.volume import Volume

__all__ = [
    "Charge",
    "ChargeModel",
    "ChargeStep",
    "FlatFee",
    "Graduated",
    "Included",
    "MinimumCommitment",
    "Package",
    "PerAttempt",
    "PerUnit",
    "Tier",
    "Volume",
    "pro_rata",
]

"""Reconciliation: a provider's statement against our own records, every gap put on a cause with its size.

Owns: the causes and classes (``model.py``), the summary and its plain-words story (``model.py``) and the
report formats (``render.py``). Does not own: reading statements (``talktime.importers``) or the vectorised
matching and re-metering (``talktime.engine.reconcile``), which produces the numbers this package explains.

Matching: a statement line and a record match by the provider's id when both have it (the record's
``attr.provider_id``, else its ``id``, equals the line's id: a Call SID, request_id, transcript id); the
others by start time within a window and duration within the same window. Each line is then one of
matched, mismatched (matched, but a difference no cause explains exceeds the tolerance), provider-only,
internal-only, duplicate (the same provider id billed again).

Attribution, per line: ``provider = tally + sum(causes) + unexplained``, exactly. The tally is what we
count ourselves (``tally`` mode: the first record of each session measured on its content: audio seconds,
else answered time, else connection time; the session's other records count 0, as a customer counts
calls, not connections) or our records under the provider's profile (``profile`` mode). Re-metering the
record under the provider's profile gives its trail; each step's difference is a cause.
"""

from talktime.core.reconcile.model import CAUSES, CLASSES, Options, Summary

__all__ = ["CAUSES", "CLASSES", "Options", "Summary"]

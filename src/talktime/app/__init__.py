"""The application layer: one function per use case, called by every face (CLI, HTTP API, dashboard).

It owns what a use case decides beyond the pure domain: which engine runs (and why it fell back), where
the records come from (a file or an event store), which policies and cards apply, how an explain trail
reads. It takes typed inputs (paths or records, policy ids or objects, card paths or objects, enums) and
returns result objects. It does not parse a command line or an HTTP request, print, or draw: the faces
do that, and call nothing below this layer for the use cases it covers (docs/adr/0007).

Modules, one per use case: :mod:`.meter`, :mod:`.explain`, :mod:`.methodology` (profiles and their
pages), :mod:`.simulate`, :mod:`.compare`, :mod:`.margin`, :mod:`.invoice`, :mod:`.reconcile`,
:mod:`.exports`, :mod:`.measure`, :mod:`.proxy`, :mod:`.webhooks`, :mod:`.keys`, :mod:`.serve`, the live
service's (:mod:`.service`, :mod:`.served`, :mod:`.stored`) and the dashboard's own; :mod:`.history`,
:mod:`.cards`, :mod:`.guards`, :mod:`.stores` and :mod:`.progress` serve them.
"""

"""What-if at volume: synthetic calls generated in DuckDB SQL with a seed, metered by the vectorised engine
under several policies, the provider-switch comparison read from files or a store, charts and reports.

Owns: generating calls (``generate.py``), rating on DuckDB (``passes.py``), running policies over calls
(``run.py``), the provider switch on DuckDB (``switch_run.py``), charts (``charts.py``) and the HTML report
(``report.py``). Does not own: the arithmetic and the rules (``talktime.core.simulate``) or metering
(``talktime.engine``, ``talktime.core.metering``).
"""

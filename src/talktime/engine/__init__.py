"""Vectorised metering on a query engine: a policy compiles to SQL; DuckDB by default, others by URL.

Owns: compiling policies to queries (``compile.py``, per-engine spellings in ``dialects.py``), scanning record
files on an engine (``sources.py``, ``backends.py``) and choosing an engine from a URL (``urls.py``).
Does not own: what a policy means. The scalar reference meter (``talktime.core.metering.meter``) is the
oracle: every engine must give the same per-record billable seconds and totals, exactly.
"""

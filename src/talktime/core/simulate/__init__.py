"""What-if: rounding impact over a distribution of calls, and re-metering history under another provider.

Owns: the distribution and mix specs (``spec.py``), the per-policy impact arithmetic (``impact.py``) and the
provider-switch comparison (``switch.py``). Pure: no files, no clock, no engine. Does not own: generating
calls at volume or running an engine (``talktime.simulate``), charts or reports.
"""

"""The dashboard: the operator's pages in a browser (``talktime dashboard``), server-rendered with Jinja2,
htmx for the table's sorting, filtering and paging, and Plotly for the charts; both scripts are served by
the app itself (htmx ships in ``static/``, Plotly's bundle with the ``plotly`` package), no CDN.

Owns: pages, their layout and the words and precision numbers are shown at. Does not own: any number on
them: every amount, quantity and trail comes from :mod:`talktime.app` (the rows of ``talktime margin --by
session``, the trails of ``talktime explain``, the methodology pages), so the pages and the CLI agree.
"""

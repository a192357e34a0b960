"""``python -m talktime``: the same as the ``talktime`` command."""

from talktime.cli.main import app

app()

"""The server's log lines go to standard error as it is when each line is written: ``serve`` run in-process
by a caller that swaps standard error for a while (Typer's test runner here, an embedding program) must not
leave talktime's log writing to the closed stream afterwards (Python prints a "Logging error" traceback for
every request of every server the process starts later)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from talktime.api import access_log
from talktime.cli.main import app


def test_log_lines_after_an_in_process_serve_reach_the_current_stderr(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    for logger in (access_log.ACCESS, access_log.SERVE):  # as a fresh process: serve configures them
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
    bad = tmp_path / "guards.toml"
    bad.write_text("[limits\n")
    result = CliRunner().invoke(app, ["serve", "--store", str(tmp_path / "e.duckdb"), "--guards", str(bad)])
    assert result.exit_code == 2, result.output
    capfd.readouterr()
    access_log.SERVE.log(logging.INFO, "a line after the runner closed its stream")
    err = capfd.readouterr().err
    assert "a line after the runner closed its stream" in err
    assert "Logging error" not in err

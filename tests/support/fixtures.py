"""Pytest fixtures shared by suites: import them into a conftest (``from support.fixtures import *``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.postgres import PostgresServer, launch


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole test session, stopped at the end; skips with the reason."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'talktime[postgres]')")
    try:
        server = launch()
    except RuntimeError as error:
        pytest.skip(str(error))
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a fresh, empty database on the session's server."""
    return postgres_server.create_database()

"""Fixtures for the end-to-end tests: a running daemon and a client bound to a project."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Env
from tests.daemon.wire import stop_and_forget
from tests.e2e.support import Api


@pytest.fixture
def api(daemon: Env, project: Path) -> Iterator[Api]:
    """A running daemon, an initialised project (default agent `sleeper`) and a client.

    Afterwards the daemon is stopped, which stops its agents; the `env` fixture then
    ends any process a failing test left behind. A shared daemon is left running: the
    `env` fixture stops what the test left on it.
    """
    a = Api(daemon, project)
    try:
        yield a
    finally:
        a.close()
        if daemon.host is None:
            stop_and_forget(daemon)

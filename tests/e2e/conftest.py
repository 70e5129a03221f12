"""Fixtures for the end-to-end tests: a running daemon and a client bound to a project."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Env
from tests.daemon.wire import stop_and_forget
from tests.e2e.support import Api, kill_leftovers


@pytest.fixture
def api(daemon: Env, project: Path) -> Iterator[Api]:
    """A running daemon, an initialised project (default agent `sleeper`) and a client.

    Afterwards the daemon is stopped (which stops its agents), and any process the
    test left behind is killed, so a failing test cannot leak agents into the next.
    """
    a = Api(daemon, project)
    try:
        yield a
    finally:
        a.close()
        try:
            stop_and_forget(daemon)
        finally:
            kill_leftovers(daemon)

"""Fixtures for the fault tests: a running daemon and a client bound to a project."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Env
from tests.daemon.wire import stop_and_forget
from tests.e2e.support import Api


@pytest.fixture
def api(daemon: Env, project: Path) -> Iterator[Api]:
    """A running daemon, an initialised project (default agent `sleeper`) and a client."""
    a = Api(daemon, project)
    try:
        yield a
    finally:
        a.close()
        stop_and_forget(daemon)

"""Fixtures for the fault tests: the e2e tests' `api` (a running daemon and a client bound
to a project), shared rather than copied."""

from __future__ import annotations

from tests.e2e.conftest import api  # noqa: F401 - re-exported as this directory's fixture

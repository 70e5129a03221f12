"""The JSON-RPC 2.0 specification's cases (and a few hostile ones) through the bridge:
the same tests as tests/daemon/test_protocol.py, byte for byte, on a connection that is
`ssh -T box orchestra bridge` instead of the daemon's socket."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestra.client.remote import Link, open_link
from orchestra.core.remote import target
from tests.conftest import make_repo
from tests.daemon.test_protocol import (  # noqa: F401 - collected here, with this `served`
    Served,
    test_bad_jsonrpc_version_and_bool_id,
    test_bad_slug_says_the_rule,
    test_batch_of_notifications_gets_nothing,
    test_batch_of_one_non_request,
    test_batch_of_three_non_requests,
    test_batch_with_invalid_json,
    test_call_with_named_params,
    test_empty_batch,
    test_garbage_gets_parse_error_and_connection_survives,
    test_invalid_json,
    test_invalid_request_object,
    test_missing_params_field,
    test_mixed_batch,
    test_notification_gets_no_reply,
    test_params_of_the_wrong_type,
    test_pipelined_requests_answer_in_order,
    test_positional_params_are_refused,
    test_reply_arrives_after_the_client_half_closes,
    test_responses_sent_to_the_daemon_are_ignored,
    test_unknown_method,
    test_unknown_project_is_refused,
)
from tests.daemon.wire import TIMEOUT, Raw, stop_and_forget
from tests.remote.conftest import ALIAS, Server


class RawOverSsh(Raw):
    """A raw connection to the host's daemon through ssh and its bridge."""

    def __init__(self, sshd: Server, *, timeout: float = TIMEOUT) -> None:
        t = target(ALIAS, {}, sshd.ssh)
        self.sock, self.link, rest = open_link(t, control_dir=sshd.base / "cm")
        self.sock.settimeout(timeout)
        self.buffer = rest
        self._next_id = 0

    def close(self) -> None:
        self.sock.close()
        self.link.close()


class ServedOverSsh(Served):
    def __init__(self, sshd: Server, root: Path) -> None:
        super().__init__(sshd.remote, root)
        self.sshd = sshd

    def raw(self) -> Raw:
        return RawOverSsh(self.sshd)


@pytest.fixture(scope="module")
def served(sshd: Server) -> Iterator[ServedOverSsh]:
    base = Path(tempfile.mkdtemp(prefix="orc-", dir="/tmp"))
    try:
        root = make_repo(base / "repo")
        sshd.remote.run("init", cwd=root, check=True)
        sshd.remote.run("daemon", "start", check=True)
        with sshd.remote.client() as c:
            c.call("task.new", {"project": str(root), "slug": "first", "description": "One."})
        yield ServedOverSsh(sshd, root)
    finally:
        stop_and_forget(sshd.remote)
        shutil.rmtree(base, ignore_errors=True)


def test_the_greeting_comes_first(sshd: Server) -> None:
    """The bridge's first line is its greeting, with its version; then it is silent until
    asked."""
    import subprocess

    proc = subprocess.run(
        [*sshd.ssh, "-T", ALIAS, "orchestra", "bridge"],
        input=b"",
        capture_output=True,
        timeout=TIMEOUT,
    )
    first, _, rest = proc.stdout.partition(b"\n")
    assert first.startswith(b'{"jsonrpc": "2.0", "method": "bridge.hello"')
    assert b'"version": "0.1.0"' in first and rest == b""
    assert proc.returncode == 0


def test_the_link_is_a_local_client_there(served: ServedOverSsh) -> None:
    """The daemon sees the bridge as one of its own user's local clients: a call through
    it is answered as on the socket."""
    with served.raw() as c:
        assert isinstance(c, RawOverSsh) and isinstance(c.link, Link)
        reply: dict[str, Any] = c.request("daemon.status")
    assert reply["result"]["socket"] == str(served.env.socket)

"""The pure part of reaching another host (core/remote.py), as plain functions: which host
a name means, the ssh command line, the bridge's greeting, what a failed ssh means."""

from __future__ import annotations

import json

import pytest

from orchestra.core import remote
from orchestra.core.errors import (
    ConfigError,
    DaemonUnreachable,
    HostRefused,
    HostUnreachable,
    InvalidParams,
    NotOnHost,
    VersionMismatch,
)

BOX = remote.target("box", {}, ["ssh"])


@pytest.mark.parametrize("good", ["box", "me@box", "ssh://me@box:2222", "me@10.0.0.1", "a.b-c"])
def test_destinations_ssh_takes(good: str) -> None:
    """Anything ssh takes as one destination word is kept as it is."""
    assert remote.check_destination(good) == good


@pytest.mark.parametrize(
    "bad", ["", "-oProxyCommand=touch /tmp/x", "a b", "box\n", "a\x00", "é\x85"]
)
def test_destinations_that_would_be_options_or_several_words(bad: str) -> None:
    """A leading dash (an ssh option), spaces and control characters are refused."""
    with pytest.raises(InvalidParams, match="ssh destination"):
        remote.check_destination(bad)


def test_a_name_under_hosts_or_a_destination() -> None:
    """A [hosts.NAME] table gives its address, project, command and ssh; any other name is
    the destination itself, with the global ssh."""
    hosts = {
        "dev": {
            "address": "me@dev.example.com",
            "project": "/srv/app",
            "orchestra": "/opt/o",
            "ssh": ["ssh", "-F", "cfg"],
        }
    }
    dev = remote.target("dev", hosts, ["ssh", "-4"])
    assert dev == remote.Target(
        "dev", "me@dev.example.com", "/srv/app", "/opt/o", ("ssh", "-F", "cfg")
    )
    other = remote.target("me@other", hosts, ["ssh", "-4"])
    assert other == remote.Target("me@other", "me@other", None, "orchestra", ("ssh", "-4"))


@pytest.mark.parametrize(
    "table",
    [
        {"project": "relative/path"},
        {"project": 5},
        {"orchestra": ""},
        {"ssh": "ssh -F cfg"},
        {"ssh": ["ssh", 3]},
        {"address": "-oProxyCommand=x"},
    ],
)
def test_bad_host_tables_are_config_errors(table: dict[str, object]) -> None:
    """The client checks the keys it reads itself: each bad one is a clear error."""
    with pytest.raises((ConfigError, InvalidParams)):
        remote.target("dev", {"dev": table}, ["ssh"])


def test_the_ssh_command_line() -> None:
    """-T, keep-alives, our control connection when asked, then `--` before the host, and
    the remote command quoted for the remote shell."""
    t = remote.target("box", {"box": {"orchestra": "/opt/my orchestra"}}, ["ssh", "-F", "c"])
    line = remote.ssh_argv(t, "/run/o/ssh/%C")
    assert line[:4] == ["ssh", "-F", "c", "-T"]
    assert "ControlMaster=auto" in line and "ControlPath=/run/o/ssh/%C" in line
    assert line[-3:] == ["--", "box", "'/opt/my orchestra' bridge"]
    plain = remote.ssh_argv(BOX, None, start=False)
    assert not any(a.startswith("Control") for a in plain)
    assert plain[-1] == "orchestra bridge --no-start"


def test_the_control_name_is_a_hash_of_the_command_and_destination() -> None:
    """One name per ssh command and destination, of hex digits only."""
    a = remote.control_name(BOX)
    assert a == remote.control_name(remote.target("box", {}, ["ssh"]))
    assert a != remote.control_name(remote.target("box", {}, ["ssh", "-4"]))
    assert a != remote.control_name(remote.target("me@box", {}, ["ssh"]))
    assert len(a) == 24 and all(c in "0123456789abcdef" for c in a)


def test_the_users_own_connection_sharing() -> None:
    """`ssh -G` saying controlmaster or a control path means the user set their own."""
    assert not remote.uses_control("user me\ncontrolmaster false\ncontrolpath none\n")
    assert remote.uses_control("controlmaster auto\ncontrolpath none\n")
    assert remote.uses_control("controlmaster false\ncontrolpath ~/.ssh/cm-%C\n")
    assert not remote.uses_control("")


def test_the_greeting_round_trip() -> None:
    """The bridge's greeting is a JSON-RPC notification; the client finds it, and checks
    the version and the error it may carry."""
    line = remote.hello("1.2.3").rstrip(b"\n")
    assert json.loads(line) == {
        "jsonrpc": "2.0",
        "method": "bridge.hello",
        "params": {"version": "1.2.3"},
    }
    params = remote.greeting(line)
    assert params == {"version": "1.2.3"}
    remote.check_greeting(BOX, params, "1.2.3")
    with pytest.raises(VersionMismatch, match=r"box runs orchestra 1\.2\.3, this machine 1\.2\.4"):
        remote.check_greeting(BOX, params, "1.2.4")
    failed = remote.greeting(remote.hello("1.2.3", DaemonUnreachable("no daemon")).rstrip())
    assert failed is not None
    with pytest.raises(DaemonUnreachable, match="on box: no daemon"):
        remote.check_greeting(BOX, failed, "1.2.3")


@pytest.mark.parametrize(
    "line",
    [b"Welcome to box", b"{}", b'{"method": "bridge.hello"}', b'{"method": "other"}', b"[1]"],
)
def test_what_is_not_a_greeting(line: bytes) -> None:
    """A banner, or JSON that is not our greeting, is skipped (None), never a crash."""
    assert remote.greeting(line) is None


@pytest.mark.parametrize(
    ("code", "stderr", "kind", "words"),
    [
        (
            255,
            "ssh: Could not resolve hostname box: Name or service not known\n",
            HostUnreachable,
            "cannot reach box",
        ),
        (
            255,
            "ssh: connect to host box port 22: Connection refused\r\n",
            HostUnreachable,
            "Connection refused",
        ),
        (255, "me@box: Permission denied (publickey).\n", HostRefused, "refused the login"),
        (255, "Host key verification failed.\n", HostRefused, "host key verification"),
        (127, "bash: line 1: orchestra: command not found\n", NotOnHost, "not found on box"),
        (1, "sh: 1: orchestra: not found\n", NotOnHost, "not found on box"),
        (None, "", HostUnreachable, "did not answer in time"),
        (3, "", HostUnreachable, "ended (exit 3)"),
    ],
)
def test_what_a_failed_ssh_means(
    code: int | None, stderr: str, kind: type[Exception], words: str
) -> None:
    """Each way ssh fails is its own kind of error, in one line with ssh's own words."""
    error = remote.failure(BOX, code, stderr)
    assert type(error) is kind
    assert words in error.message and "\n" not in error.message
    assert error.data["host"] == "box"

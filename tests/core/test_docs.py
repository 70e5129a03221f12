"""The documentation states the defaults the code has: every key of docs/config.md's table
and of the config template `orchestra init` writes (they disagreed on `detach_keys`)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import attrs
import pytest

from orchestra.client.local import CONFIG_TEMPLATE
from orchestra.core.config import Config

DOCS = Path(__file__).resolve().parents[2] / "docs"
ROW = re.compile(
    r"^\| `(?P<key>[a-z_]+)` \| [^|]+ \| (?:`(?P<default>[^`]+)`|(?P<unset>unset)) \|",
    re.MULTILINE,
)


def _default(field: attrs.Attribute) -> object:  # type: ignore[type-arg]
    factory = getattr(field.default, "factory", None)
    return factory() if factory is not None else field.default


DEFAULTS = {f.name: _default(f) for f in attrs.fields(Config)}


def documented() -> dict[str, str]:
    text = (DOCS / "config.md").read_text()
    keys = text.split("## Keys", 1)[1].split("\n## ", 1)[0]
    return {m["key"]: m["default"] for m in ROW.finditer(keys)}  # None: "unset"


@pytest.mark.parametrize("key", sorted(documented()))
def test_config_md_states_each_default(key: str) -> None:
    """Each default in docs/config.md's table of keys is the code's."""
    assert key in DEFAULTS, f"docs/config.md documents {key!r}, which Config does not have"
    value = documented()[key]
    assert (None if value is None else tomllib.loads(f"v = {value}")["v"]) == DEFAULTS[key], key


def test_the_init_template_states_each_default() -> None:
    """Each commented-out `key = value` in the config `orchestra init` writes is the code's
    default for that key."""
    found = re.findall(r"^# ([a-z_]+) = (.+?)(?:  +#.*)?$", CONFIG_TEMPLATE, re.MULTILINE)
    assert found
    for key, value in found:
        if DEFAULTS.get(key) is not None:  # an unset key's line shows an example value
            assert tomllib.loads(f"v = {value}")["v"] == DEFAULTS[key], (key, value)


def test_every_scalar_key_is_documented() -> None:
    """No key of the config goes undocumented in docs/config.md's table."""
    tables = {"merge", "notify", "agents", "ui", "limits"}  # their own sections
    missing = set(DEFAULTS) - set(documented()) - tables
    assert not missing, json.dumps(sorted(missing))

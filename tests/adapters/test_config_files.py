"""What a client reads of the config itself (`light_value`), without validating it."""

from __future__ import annotations

from typing import Any

from orchestra.adapters.config_files import light_value


def test_a_tables_key_is_read_by_its_dotted_name() -> None:
    """`ui.keys` is the `keys` of the `[ui]` table (it was looked up as one literal key, so
    the dashboard never saw `[ui.keys]`); the topmost layer of the right type wins."""
    layers: list[tuple[str, dict[str, Any]]] = [
        ("global", {"ui": {"keys": {"stop": "X"}, "hosts": ["local", "box"]}}),
        ("project", {"ui": {"keys": "not a table"}}),
        ("environment", {"ui": 3}),
    ]
    assert light_value(layers, "ui.keys", dict, {}) == {"stop": "X"}
    assert light_value(layers, "ui.hosts", list, []) == ["local", "box"]
    assert light_value(layers, "ui.nothing", str, "d") == "d"
    assert light_value([("g", {"host": "box"})], "host", str, None) == "box"

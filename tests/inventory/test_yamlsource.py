"""The position-keeping YAML reader: values as YAML means them, except what would corrupt codes."""

from __future__ import annotations

from netwatch.inventory.yamlsource import Position, parse_yaml


def test_scalars_and_positions() -> None:
    doc = parse_yaml(
        "a: 00070\nb: [1, 2.5, x, true, no, null, ~, 12:30, 1_000, .inf, 'quoted 7']\n"
        "c:\n  d: 2026-11-22 22:00\n",
        "f.yaml",
    )
    assert doc.data == {
        "a": "00070",  # not octal 56: commune codes keep their leading zeros
        "b": [1, 2.5, "x", True, False, None, None, "12:30", 1000, float("inf"), "quoted 7"],
        "c": {"d": "2026-11-22 22:00"},  # parsed later, in Asia/Ho_Chi_Minh
    }
    assert doc.positions[("b", 2)] == Position("f.yaml", 2, 13)
    assert doc.positions[("c", "d")] == Position("f.yaml", 4, 6)
    assert doc.positions[("c", "__key__")] == Position("f.yaml", 3, 1)

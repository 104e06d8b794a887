"""Bounded specs: alias bombs, deep nesting and huge files are refused quickly, in one line, exit 2."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from wynerkit.cli.app import build_app
from wynerkit.errors import UsageError
from wynerkit.spec import source as spec_source
from wynerkit.spec.source import MAX_SPEC_BYTES, MAX_SPEC_NODES, check_yaml_bounds
from wynerkit.sweeps.baselines import read_baseline
from wynerkit.sweeps.grid import parse_axis

TINY = Path(__file__).parent / "specs" / "tiny.yaml"


def alias_bomb(levels: int) -> str:
    """Each anchor a list of nine aliases of the previous one: 9**levels nodes from a few hundred bytes."""
    lines = ["name: bomb", "a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def validate(host, *args: str):
    return CliRunner().invoke(build_app(host), ["spec", "validate", *args])


def test_an_alias_bomb_is_refused_in_milliseconds_naming_the_file(tmp_path, builtin_host):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb(12))  # about 600 bytes that would expand to 9**12 (282 billion) nodes
    started = time.perf_counter()
    result = validate(builtin_host, str(bomb))
    assert time.perf_counter() - started < 5  # before: minutes and gigabytes at 6 levels, MemoryError at 7
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"{bomb}:")
    assert f"the YAML expands to more than {MAX_SPEC_NODES} nodes" in line


def test_an_alias_bomb_in_a_set_value_is_refused_naming_the_set(builtin_host):
    value = "[&a [x, x, x, x, x, x, x, x, x, x], " + ", ".join(["[" + ", ".join(["*a"] * 40) + "]"] * 40) + "]"
    result = validate(builtin_host, str(TINY), "--set", f"data.extra={value}")
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("--set data.extra=[&a") and "nodes" in line


def test_sweep_overlays_and_grid_values_are_bounded_alike(tmp_path):
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(alias_bomb(12))
    with pytest.raises(UsageError, match=f"^{overlay}:6:10: the YAML expands to more than"):
        read_baseline(overlay)
    value = "[&a [x, x, x, x, x, x, x, x, x, x], " + ", ".join(["[" + ", ".join(["*a"] * 40) + "]"] * 40) + "]"
    with pytest.raises(UsageError, match=r"^--grid data\.extra=\[&a .*: the YAML expands to more than"):
        parse_axis(f"data.extra={value}")  # before: json.dumps expanded it while checking the value


def test_deep_nesting_is_refused_without_a_recursion_error(tmp_path, builtin_host):
    deep = tmp_path / "deep.yaml"
    deep.write_text("name: deep\nd: " + "[" * 5000 + "]" * 5000 + "\n")  # before: RecursionError in PyYAML
    result = validate(builtin_host, str(deep))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"{deep}:2:35: the YAML nests deeper than 32 levels; a spec is bounded"]


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path, builtin_host):
    looped = tmp_path / "looped.yaml"
    looped.write_text("name: looped\ndata: &a [1, *a]\n")  # before: a RecursionError in the position recorder
    result = validate(builtin_host, str(looped))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"{looped}:2:14: alias *a is inside its own anchor; a spec cannot contain itself"
    ]


def test_a_huge_spec_file_is_refused_before_it_is_parsed(tmp_path, builtin_host):
    huge = tmp_path / "huge.yaml"
    huge.write_text("name: huge\n" + "# padding\n" * (MAX_SPEC_BYTES // 10))
    result = validate(builtin_host, str(huge))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"{huge}: a spec is at most 256 KiB; this file is larger"]


def test_the_bounds_leave_real_specs_alone(builtin_host):
    result = validate(builtin_host, str(TINY), "--set", "evaluate=[{name: probe}]")
    assert result.exit_code == 0, result.output


def expanded(value: Any) -> tuple[int, int]:
    """(nodes, depth) of a YAML tree, shared parts counted at every use; a mapping's keys are nodes."""
    if isinstance(value, dict):
        children = [expanded(k) for k in value] + [expanded(v) for v in value.values()]
    elif isinstance(value, list):
        children = [expanded(v) for v in value]
    else:
        return 1, 1
    return 1 + sum(n for n, _ in children), 1 + max((d for _, d in children), default=0)


scalars = st.one_of(st.integers(-5, 5), st.sampled_from(["a", "b", "text"]), st.booleans(), st.none())


@st.composite
def shared_trees(draw: st.DrawFn) -> Any:
    """Nested lists and mappings in which some subtrees appear several times (dumped as anchor + aliases)."""
    made: list[Any] = [draw(scalars)]
    for _ in range(draw(st.integers(1, 6))):
        parts = draw(st.lists(st.sampled_from(made) | scalars, min_size=0, max_size=4))
        if draw(st.booleans()):
            made.append(parts)
        else:
            made.append({f"k{i}": part for i, part in enumerate(parts)})
    return {"root": made[-1], "also": draw(st.sampled_from(made))}


@settings(max_examples=60, deadline=None)
@given(tree=shared_trees())
def test_the_check_counts_exactly_the_nodes_and_depth_the_aliases_expand_to(tree):
    text = yaml.safe_dump(tree)
    nodes, depth = expanded(tree)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(spec_source, "MAX_SPEC_NODES", nodes)
        patch.setattr(spec_source, "MAX_SPEC_DEPTH", depth)
        check_yaml_bounds(text, "t.yaml")  # exactly at both bounds: accepted
        patch.setattr(spec_source, "MAX_SPEC_NODES", nodes - 1)
        with pytest.raises(UsageError, match=f"more than {nodes - 1} nodes"):
            check_yaml_bounds(text, "t.yaml")
        patch.setattr(spec_source, "MAX_SPEC_NODES", nodes)
        patch.setattr(spec_source, "MAX_SPEC_DEPTH", depth - 1)
        with pytest.raises(UsageError, match=f"deeper than {depth - 1} levels"):
            check_yaml_bounds(text, "t.yaml")

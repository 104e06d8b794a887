"""Spec validation: every problem is one line `FILE:LINE:COL: dotted.path: message`."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from wynerkit.errors import UsageError
from wynerkit.spec.loading import load_spec
from wynerkit.spec.models import build_run_spec_model
from wynerkit.spec.source import read_spec_source

QUICKSTART = Path(__file__).parent.parent / "specs" / "quickstart.yaml"

GOOD = """\
name: demo
seed: 3
data: {name: gaussian-pairs, x_dim: 4, y_dim: 5}
model:
  name: variational-wyner
  latent: {z: 2, u: 1, v: 1}
  x:
    name: vector
    dim: 4
  y: {name: vector, dim: 5}
estimator: {name: adversarial-js, hidden: 32}
train: {epochs: 2, batch_size: 16}
"""


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems(path: Path, registry, overrides=None) -> list[str]:
    with pytest.raises(UsageError) as info:
        load_spec(path, registry, overrides)
    return info.value.problems


def test_a_good_spec_validates_with_defaults_filled_in(tmp_path, builtin_host):
    spec = load_spec(write(tmp_path, GOOD), builtin_host.registry).spec
    assert spec.seed == 3 and spec.train.batch_size == 16 and spec.train.lr == 1e-4
    assert spec.model.name == "variational-wyner" and spec.model.x.dim == 4 and spec.model.y.dim == 5
    assert type(spec.model.x).component_kind == "modality"
    assert spec.estimator.hidden == 32 and spec.estimator.instance_noise == 0.25


def test_the_shipped_specs_validate(builtin_host):
    overlays = QUICKSTART.parent / "overlays"  # partial specs, checked where they are applied (test_iiae.py)
    benchmark_specs = QUICKSTART.parent.parent / "benchmarks" / "specs"
    for path in sorted([*QUICKSTART.parent.rglob("*.yaml"), *benchmark_specs.glob("*.yaml")]):
        if overlays not in path.parents:
            load_spec(path, builtin_host.registry)


def test_misspelled_nested_field_points_at_its_line_and_column(tmp_path, builtin_host):
    path = write(tmp_path, GOOD.replace("    dim: 4", "    dimm: 4"))
    missing, unknown = problems(path, builtin_host.registry)
    assert missing == f"{path}:7:3: model.x.dim: missing required field"
    assert unknown.startswith(f"{path}:9:5: model.x.dimm: unknown field 'dimm' (did you mean 'dim'?); allowed fields:")


def test_unknown_component_lists_the_registered_ones(tmp_path, builtin_host):
    path = write(tmp_path, GOOD.replace("name: variational-wyner", "name: variational-wynr"))
    (line,) = problems(path, builtin_host.registry)
    names = ", ".join(builtin_host.registry.names("model"))
    assert line == (
        f"{path}:5:3: model: unknown model 'variational-wynr' (did you mean 'variational-wyner'?); registered: {names}"
    )


def test_mistyped_value_names_the_value(tmp_path, builtin_host):
    path = write(tmp_path, GOOD.replace("batch_size: 16", "batch_size: sixteen"))
    (line,) = problems(path, builtin_host.registry)
    assert line.startswith(f"{path}:12:20: train.batch_size: Input should be a valid integer")
    assert line.endswith("(got 'sixteen')")


def test_every_problem_gets_its_own_line(tmp_path, builtin_host):
    text = GOOD.replace("seed: 3", "seed: -1\nsurplus: 1").replace("vector, dim: 5}", "vector, dim: 5, colour: red}")
    lines = problems(write(tmp_path, text), builtin_host.registry)
    assert sorted(line.split(": ")[1] for line in lines) == ["model.y.colour", "seed", "surplus"]


def test_missing_component_name_and_missing_required_field(tmp_path, builtin_host):
    path = write(
        tmp_path, GOOD.replace("{name: adversarial-js, hidden: 32}", "{hidden: 32}").replace("name: demo\n", "")
    )
    lines = problems(path, builtin_host.registry)
    assert f"{path}:1:1: name: missing required field" in lines
    assert any(line.startswith(f"{path}:10:1: estimator: missing 'name': say which estimator") for line in lines)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: [unclosed\n", ":2:1: invalid YAML"),
        ("name: a\n  bad: indent\n", ":2:6: invalid YAML"),
        ("- just\n- a list\n", ":1:1: a spec must be a mapping"),
    ],
)
def test_broken_yaml_names_the_place(tmp_path, builtin_host, text, expected):
    path = write(tmp_path, text)
    (line,) = problems(path, builtin_host.registry)
    assert line.startswith(f"{path}{expected}")


def test_missing_file(tmp_path, builtin_host):
    (line,) = problems(tmp_path / "nope.yaml", builtin_host.registry)
    assert line == f"{tmp_path / 'nope.yaml'}: no such file (check the path of the spec)"


def test_overrides_apply_and_their_errors_name_the_override(tmp_path, builtin_host):
    path = write(tmp_path, GOOD)
    spec = load_spec(path, builtin_host.registry, ["train.epochs=7", "model.x.hidden=33", "train.max_steps=100"]).spec
    assert spec.train.epochs == 7 and spec.model.x.hidden == 33 and spec.train.max_steps == 100
    (line,) = problems(path, builtin_host.registry, ["model.latent.z=many"])
    assert line.startswith("--set model.latent.z=many: model.latent.z: Input should be a valid integer")


@pytest.mark.parametrize(
    ("assignment", "expected"),
    [
        ("train.epochs", "--set train.epochs: expected KEY=VALUE"),
        ("seed.deeper=1", "--set seed.deeper=1: seed is int 3, not a mapping"),
        ("=3", "--set =3: expected KEY=VALUE"),
    ],
)
def test_malformed_overrides(tmp_path, builtin_host, assignment, expected):
    (line,) = problems(write(tmp_path, GOOD), builtin_host.registry, [assignment])
    assert line.startswith(expected)


def test_schema_covers_every_registered_component(builtin_host):
    schema = json.dumps(build_run_spec_model(builtin_host.registry).model_json_schema())
    for component in builtin_host.registry:
        if component.kind not in ("objective_term", "data_source"):
            assert f'"const": "{component.name}"' in schema, component.name


keys = st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True)
trees = st.recursive(
    st.integers(-5, 5) | st.booleans() | keys,
    lambda children: st.dictionaries(keys, children, min_size=1, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(tree=st.dictionaries(keys, trees, min_size=1, max_size=4), flow=st.booleans())
def test_recorded_positions_point_at_their_keys(tmp_path_factory, tree, flow):
    path = tmp_path_factory.mktemp("pos") / "spec.yaml"
    path.write_text(yaml.safe_dump(tree, default_flow_style=flow, width=60))
    source = read_spec_source(path)
    lines = path.read_text().splitlines()
    assert source.data == tree
    for yaml_path, position in source.positions.items():
        key = yaml_path[-1]
        text = lines[position.line - 1][position.column - 1 :].lstrip("'\"")  # YAML quotes keys like 'on'
        assert text.startswith(str(key)), (yaml_path, position)


# Top-level blocks of GOOD, each with a broken variant (one or two problems inside the block).
BLOCKS = {
    "name": ("name: demo", "name: [1, 2]"),
    "seed": ("seed: 3", "seed: -1"),
    "data": ("data: {name: gaussian-pairs, x_dim: 4, y_dim: 5}", "data: {name: gaussian-pairs, x_dim: 4, colour: red}"),
    "model": (
        "model:\n  name: variational-wyner\n  latent: {z: 2, u: 1, v: 1}\n  x: {name: vector, dim: 4}\n"
        "  y: {name: vector, dim: 5}",
        "model:\n  name: variational-wyner\n  latent: {z: 2, u: 1, v: 1}\n  x:\n    name: vector\n    dimm: 4\n"
        "  y: {name: vector, dim: five}",
    ),
    "estimator": ("estimator: {name: adversarial-js, hidden: 32}", "estimator: {name: adversarial-js, hidden: many}"),
    "train": ("train: {epochs: 2, batch_size: 16}", "train: {epochs: 2, batch_size: sixteen, colour: red}"),
}


def reported_positions(lines: list[str], path: Path) -> list[tuple[int, int]]:
    """(line, column) of each ``FILE:LINE:COL: ...`` problem line."""
    positions = []
    for line in lines:
        row, column = line.removeprefix(f"{path}:").split(":")[:2]
        positions.append((int(row), int(column)))
    return positions


@settings(max_examples=25, deadline=None)
@given(order=st.permutations(sorted(BLOCKS)), broken=st.sets(st.sampled_from(sorted(BLOCKS)), min_size=2))
def test_problems_are_printed_in_file_order(tmp_path_factory, builtin_host, order, broken):
    # pydantic reports in the model's field order (name, seed, data, model, ...), not the file's
    text = "\n".join(BLOCKS[key][key in broken] for key in order) + "\n"
    path = tmp_path_factory.mktemp("order") / "spec.yaml"
    path.write_text(text)
    lines = problems(path, builtin_host.registry)
    positions = reported_positions(lines, path)
    assert positions == sorted(positions), lines
    assert {line.split(": ")[1].split(".")[0].split("[")[0] for line in lines} == broken


def test_override_problems_follow_the_file_problems_in_the_order_given(tmp_path, builtin_host):
    path = write(tmp_path, GOOD.replace("batch_size: 16", "batch_size: sixteen").replace("seed: 3", "seed: -1"))
    lines = problems(path, builtin_host.registry, ["model.latent.z=many", "data.x_dim=wide"])
    assert [line.split(": ")[0] for line in lines] == [
        f"{path}:2:1",
        f"{path}:12:20",
        "--set model.latent.z=many",
        "--set data.x_dim=wide",
    ]

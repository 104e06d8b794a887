"""docs/plugins.md, docs/data.md and docs/metrics.md say what the code does (the items of issue 17)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

DOCS = Path(__file__).resolve().parents[1] / "docs"
TINY = Path(__file__).parent / "specs" / "tiny.yaml"


def test_the_unknown_dataset_error_in_plugins_md_is_the_one_spec_validate_prints(cli, tmp_path):
    quoted = r"`FILE:LINE:COL: ([\w.]+): unknown dataset 'circle-pairs'"
    documented = re.search(quoted, (DOCS / "plugins.md").read_text())
    assert documented, "docs/plugins.md no longer quotes the unknown-dataset error"
    spec = yaml.safe_load(TINY.read_text())
    spec["data"]["name"] = "circle-pairs"
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    result = cli("spec", "validate", path)
    assert result.exit_code == 2
    printed = re.search(rf"{re.escape(str(path))}:\d+:\d+: ([\w.]+): unknown dataset 'circle-pairs'", result.output)
    assert printed, result.output
    assert documented.group(1) == printed.group(1) == "data"


def test_data_sources_and_batched_fetches_are_documented():
    plugins, data = (DOCS / "plugins.md").read_text(), (DOCS / "data.md").read_text()
    for text in (plugins, data):
        assert "`subdir`" in text and "open_content(path)" in text and ".gz" in text
    batched = plugins.split("### Batched fetches (`BatchedSplit`)")[1].split("###")[0]
    assert "`[B, *x_shape]`" in batched and "int64" in batched, "what __getitems__ returns"


def test_the_digit_evaluators_are_not_documented_as_for_paired_digit_datasets_only():
    for name in ("metrics.md", "components.md"):
        text = (DOCS / name).read_text()
        assert "paired digit datasets only" not in text, name
    assert "any dataset whose x and y items are images labelled with" in (DOCS / "metrics.md").read_text()

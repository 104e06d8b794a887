"""``metrics.jsonl``: a line torn by a kill is dropped on resume (and said), other damage is named by line."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wynerkit.errors import UsageError
from wynerkit.rundir.metrics_log import MetricsLog

finite = st.floats(allow_nan=False, allow_infinity=False)
records = st.lists(
    st.fixed_dictionaries(
        {"step": st.integers(1, 10**6)}, optional={"loss.generator": finite, "epoch": st.integers(0)}
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(records=records, step=st.integers(0, 10**6), cut=st.integers(1, 10**4))
def test_a_torn_last_line_is_dropped_and_every_whole_line_up_to_the_step_is_kept_verbatim(
    tmp_path_factory, records, step, cut
):
    path = tmp_path_factory.mktemp("log") / "metrics.jsonl"
    lines = [json.dumps(record) for record in records]
    torn = lines[-1][: min(cut, len(lines[-1]) - 1)]  # any proper prefix of a JSON object is not JSON
    path.write_text("".join(line + "\n" for line in lines[:-1]) + torn)
    log = MetricsLog(path)
    assert log.read() == records[:-1]
    assert log.truncate_after(step) is True
    kept = [line for line, record in zip(lines[:-1], records[:-1], strict=True) if record["step"] <= step]
    assert path.read_text() == "".join(line + "\n" for line in kept)
    assert log.truncate_after(step) is False  # nothing torn any more


def test_a_whole_last_line_without_its_newline_is_kept(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 5}\n{"step": 10}')
    assert MetricsLog(path).truncate_after(10) is False
    assert path.read_text() == '{"step": 5}\n{"step": 10}\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"step": 5}\n{"ste\n{"step": 10}\n', "metrics.jsonl:2: not a JSON line"),
        ('{"step": 5}\n{"ste\n', "metrics.jsonl:2: not a JSON line"),  # ends with a newline: not torn by a kill
        ('{"step": 5}\n[1, 2]\n', "metrics.jsonl:2: not a metrics record"),
    ],
)
def test_damage_a_kill_cannot_cause_is_named_by_file_and_line(tmp_path, text, message):
    path = tmp_path / "metrics.jsonl"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        MetricsLog(path).truncate_after(10)
    assert path.read_text() == text

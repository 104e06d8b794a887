"""``metrics.jsonl``: one JSON object per line, appended; a resumed run first drops lines past its step."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from wynerkit.atomic import write_text_atomic
from wynerkit.errors import UsageError


class MetricsLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def truncate_after(self, step: int) -> bool:
        """Keep the lines up to ``step``: what a killed run logged after its checkpoint is redone.

        Returns whether a half-written last line (a kill in the middle of its write) was dropped.
        """
        if not self.path.exists():
            return False
        entries, torn = self._parse()
        write_text_atomic(self.path, "".join(line + "\n" for line, record in entries if record["step"] <= step))
        return torn

    def write(self, record: dict[str, Any]) -> None:
        clean = {k: (v if not isinstance(v, float) or math.isfinite(v) else str(v)) for k, v in record.items()}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(clean, sort_keys=False) + "\n")
            f.flush()

    def read(self) -> list[dict[str, Any]]:
        """The records, without a half-written last line."""
        if not self.path.exists():
            return []
        return [record for _, record in self._parse()[0]]

    def _parse(self) -> tuple[list[tuple[str, dict[str, Any]]], bool]:
        """Each line with its record, and whether the last line was torn (no newline after it, and not JSON).

        Only the last line can be torn by a kill, since lines are appended whole; any other bad line
        is damage wynerkit did not cause, reported with its line number.
        """
        text = self.path.read_text(encoding="utf-8", errors="replace")
        lines = text.splitlines()
        entries = []
        for number, line in enumerate(lines, 1):
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                if number == len(lines) and not text.endswith("\n"):
                    return entries, True
                raise UsageError(
                    f"{self.path}:{number}: not a JSON line ({exc.msg}); delete or repair that line"
                ) from None
            if not isinstance(record, dict) or not isinstance(record.get("step"), int):
                raise UsageError(f"{self.path}:{number}: not a metrics record (no integer step); delete that line")
            entries.append((line, record))
        return entries, False

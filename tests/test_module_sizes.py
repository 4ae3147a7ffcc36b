"""Modules stay short enough to read in one sitting: at most 450 lines in ``services/`` and
``shared/``, unless the module's docstring says why it is longer (a line starting
``Long because``)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 450


def test_no_module_in_services_or_shared_is_over_450_lines_without_saying_why():
    modules = [p for folder in ("services", "shared") for p in sorted((ROOT / folder).rglob("*.py"))]
    assert len(modules) > 50  # the walk found the tree
    too_long = []
    for path in modules:
        text = path.read_text()
        if text.count("\n") <= MAX_LINES:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        if not any(line.startswith("Long because") for line in doc.splitlines()):
            too_long.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
    assert too_long == []

"""Golden cases: each `cases/*` file lists its expected diagnostics as `# expect:` lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatplane.lang import compile_source
from tests.unit.lang.conftest_helpers import CASES

FILES = sorted(p for p in CASES.iterdir() if p.suffix in (".abl", ".yaml"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_case(path: Path) -> None:
    text = path.read_text()
    want = set()
    for line in text.splitlines():
        if line.startswith("# expect:"):
            code, sev, num = line.split(":", 1)[1].split()
            want.add((code, sev, int(num)))
    got = {(d.code, d.severity.value, d.line) for d in compile_source(text).diagnostics}
    assert want <= got, sorted(got)

"""`chatplane agents check`: compiler-style output, exit status, no server."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatplane import cli

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "agents"


def test_examples_compile(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["agents", "check", str(EXAMPLES)]) == 0
    out = capsys.readouterr()
    assert ": error:" not in out.out
    assert "4 file(s): 0 error(s)" in out.err


def test_broken_file_exits_1_with_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.abl"
    broken.write_text(
        'AGENT: Broken\nGOAL: "g"\n\nFLOW:\n  greet:\n    REASONING: false\n'
        '    RESPOND: "Hi"\n    THEN: confrim\n  confirm:\n    REASONING: false\n',
        encoding="utf-8",
    )
    good = EXAMPLES / "password-reset.abl"
    assert cli.main(["agents", "check", str(good), str(broken)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert f"{broken}:8:1: error: THEN at line 8 names step 'confrim'" in lines[0]
    assert lines[0].endswith("[ABL0301]")
    assert any(line.startswith(f"{broken}:9:1: warning: ") for line in lines)


def test_missing_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["agents", "check", str(tmp_path / "nope.abl")]) == 1
    assert "cannot read" in capsys.readouterr().out

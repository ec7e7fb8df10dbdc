"""Property tests: JSON round trips, and random edits never crash the compiler."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatplane.lang import compile_source
from chatplane.lang.serialize import from_json, to_json
from tests.unit.lang.conftest_helpers import EXAMPLES

SOURCES = [
    (EXAMPLES / "password-reset.abl").read_text(),
    (EXAMPLES / "support.abl").read_text(),
    (EXAMPLES / "support.agent.yaml").read_text(),
]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def edited(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(SOURCES)).split("\n")
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            lines = [""]
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "dup", "insert", "indent", "dedent", "chars", "swap"]))
        if op == "delete":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "insert":
            lines.insert(i, draw(st.text(max_size=40)))
        elif op == "indent":
            lines[i] = " " * draw(st.integers(1, 6)) + lines[i]
        elif op == "dedent":
            lines[i] = lines[i].lstrip()
        elif op == "chars":
            pos = draw(st.integers(0, len(lines[i])))
            junk = draw(
                st.text(
                    alphabet=st.sampled_from(list(":-|{}[]()\"'#=<>!\t ,.a1")),
                    min_size=1,
                    max_size=5,
                )
            )
            lines[i] = lines[i][:pos] + junk + lines[i][pos:]
        else:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


@SETTINGS
@given(edited())
def test_random_edits_give_diagnostics_inside_the_file(text: str) -> None:
    r = compile_source(text)
    n_lines = max(text.count("\n") + 1, 1)
    for d in r.diagnostics:
        assert 1 <= d.line <= n_lines + 1, d
        assert d.col >= 1
        assert d.code and d.message
    if r.program is not None:
        assert from_json(json.loads(json.dumps(to_json(r.program)))) == r.program


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(text: str) -> None:
    compile_source(text)
    compile_source(text, format="yaml")


@SETTINGS
@given(edited())
def test_ir_json_round_trip(text: str) -> None:
    r = compile_source(text)
    if r.program is None:
        return
    data = to_json(r.program)
    assert to_json(from_json(json.loads(json.dumps(data)))) == data

"""Our example agents compile cleanly; the ABL and YAML twins give one IR."""

from __future__ import annotations

import dataclasses
import json

from chatplane.lang import compile_source
from chatplane.lang.serialize import from_json, to_json, without_positions
from tests.unit.lang.conftest_helpers import EXAMPLES

AGENTS = frozenset({"Billing_Agent", "Password_Reset", "Order_Support"})


def test_examples_compile_without_errors() -> None:
    files = sorted(EXAMPLES.glob("*.abl")) + sorted(EXAMPLES.glob("*.agent.yaml"))
    assert len(files) >= 3
    for f in files:
        r = compile_source(f.read_text(), known_agents=AGENTS)
        assert r.ok, (f.name, [d.format() for d in r.errors])
        p = r.program
        assert p is not None
        assert from_json(json.loads(json.dumps(to_json(p)))) == p


def test_abl_and_yaml_twins_are_equal() -> None:
    a = compile_source((EXAMPLES / "support.abl").read_text()).program
    b = compile_source((EXAMPLES / "support.agent.yaml").read_text()).program
    assert a is not None and b is not None and b.format == "yaml"
    assert without_positions(a) == dataclasses.replace(without_positions(b), format="abl")


def test_compile_500_lines() -> None:
    # Its speed is measured by `make bench` (section C), not here.
    base = (EXAMPLES / "password-reset.abl").read_text()
    head, tail = base.split("\nESCALATE:", 1)
    steps = []
    for i in range(50):
        steps.append(
            f"  s{i}:\n    REASONING: false\n    SET:\n      v{i} = ADD(code_attempts, {i})\n"
            f'    RESPOND: "Step {i}: {{{{v{i}}}}}"\n    CHECK: v{i} > 0\n    ON_FAIL: s0\n'
            f"    THEN: s{i + 1 if i < 49 else 0}\n"
        )
    text = head + "\n" + "".join(steps) + "\nESCALATE:" + tail
    assert text.count("\n") >= 500
    r = compile_source(text)
    assert r.ok, [d.format() for d in r.errors]
    assert r.program is not None and r.program.flow is not None
    assert len(r.program.flow.steps) == 56

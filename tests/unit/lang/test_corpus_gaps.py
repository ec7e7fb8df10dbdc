"""Constructs the reference corpus run found missing; each test is our own small agent."""

from __future__ import annotations

import textwrap

from chatplane.lang import compile_source, ir
from chatplane.lang.expr_ast import Lit, Name
from tests.unit.lang.conftest_helpers import codes, compile_ok

HEAD = 'AGENT: T\nGOAL: "g"\n'


def src(body: str) -> str:
    return HEAD + textwrap.dedent(body)


def _calls(p: ir.Program | None) -> list[ir.CallTool]:
    assert p is not None and p.flow is not None
    return [a for s in p.flow.steps.values() for a in s.actions if isinstance(a, ir.CallTool)]


def test_positional_call_arguments_take_parameter_names() -> None:
    p = compile_ok(
        src("""
        TOOLS:
          find_room(city: string, nights: number, guests: number = 1) -> object
        FLOW:
          look:
            REASONING: false
            GATHER:
              - town: required
            CALL: find_room(town, 3)
            THEN: END
        """)
    ).program
    (c,) = _calls(p)
    assert c.tool == "find_room"
    assert [a.name for a in c.args] == ["city", "nights"]
    assert c.args[0].value.root == Name("town")
    assert c.args[1].value.root == Lit(3)


def test_positional_and_named_call_arguments_mix() -> None:
    p = compile_ok(
        src("""
        TOOLS:
          note(text: string, level: string = "info") -> object
        FLOW:
          s:
            REASONING: false
            CALL: note("hello", level = "warn")
        """)
    ).program
    (c,) = _calls(p)
    assert [(a.name, a.value.root) for a in c.args] == [
        ("text", Lit("hello")),
        ("level", Lit("warn")),
    ]


def test_too_many_positional_arguments_is_an_error() -> None:
    r = compile_source(
        src("""
        TOOLS:
          ping(host: string) -> object
        FLOW:
          s:
            REASONING: false
            CALL: ping("a", "b")
        """)
    )
    assert "ABL0305" in codes(r)
    assert any("ping takes 1" in d.message for d in r.errors)


def test_positional_arguments_of_an_undeclared_tool_report_only_the_tool() -> None:
    r = compile_source(
        src("""
        FLOW:
          s:
            REASONING: false
            CALL: nowhere(x, 2)
        """)
    )
    assert [d.code for d in r.errors] == ["ABL0304"]


def test_use_behavior_profile_both_spellings_are_kept_as_data() -> None:
    for line in ("USE BEHAVIOR_PROFILE: calm_voice", "USE_BEHAVIOR_PROFILE: calm_voice"):
        r = compile_ok(src(line + "\n"))
        assert r.program is not None
        (sec,) = r.program.sections
        assert (sec.name, sec.data) == ("USE_BEHAVIOR_PROFILE", "calm_voice")
        assert "ABL0401" in codes(r)


def test_behavior_profile_override_blocks_are_not_agent_sections() -> None:
    r = compile_ok(
        textwrap.dedent("""
        BEHAVIOR_PROFILE: calm_voice
        PRIORITY: 5
        WHEN: channel == "voice"
        TOOLS:
          HIDE: [debug_dump]
          ADD:
            call_back(reason: string) -> {ticket: string}
        GATHER:
          FIELD_OVERRIDES:
            order_no:
              prompt: "Say the order number digit by digit."
        FLOW:
          SKIP: [upsell]
          INSERTIONS:
            - BEFORE: pay
              RESPOND: "One moment."
        """)
    )
    p = r.program
    assert p is not None and p.kind == "behavior_profile"
    assert p.tools == () and p.gather == () and p.flow is None
    assert {s.name for s in p.sections} >= {"TOOLS", "GATHER", "FLOW"}
    assert "ABL0110" not in codes(r)


def test_identity_role_is_the_goal_and_its_limitations_count() -> None:
    p = compile_ok(
        textwrap.dedent("""
        AGENT: Desk
        IDENTITY:
          role: "Book meeting rooms"
          persona: "Brisk and polite"
          limitations:
            - "No catering orders"
        """)
    ).program
    assert p is not None
    assert (p.goal, p.persona, p.limitations) == (
        "Book meeting rooms",
        "Brisk and polite",
        ("No catering orders",),
    )

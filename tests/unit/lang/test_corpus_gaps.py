"""Constructs the reference corpus run found missing; each test is our own small agent."""

from __future__ import annotations

import textwrap

from chatplane.lang import compile_source, ir
from chatplane.lang.expr_ast import Lit, Name
from tests.unit.lang.conftest_helpers import codes, compile_ok, src


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
    for line in (
        "USE BEHAVIOR_PROFILE: calm_voice",
        "USE\tBEHAVIOR_PROFILE: calm_voice",
        "USE_BEHAVIOR_PROFILE: calm_voice",
    ):
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


def test_flow_arrow_line_gives_the_step_order() -> None:
    r = compile_ok(
        src("""
        FLOW:
          ask -> thank
          thank:
            REASONING: false
            RESPOND: "Thanks."
          ask:
            REASONING: false
            RESPOND: "Hi."
            THEN: thank
        """)
    )
    p = r.program
    assert p is not None and p.flow is not None
    assert p.flow.order == ("ask", "thank") and p.flow.entry_point == "ask"
    assert "ABL0103" not in codes(r)


def test_flow_arrow_line_naming_missing_steps_is_an_undefined_step() -> None:
    r = compile_source(src("FLOW:\n  begin -> middle -> COMPLETE\n"))
    assert "ABL0103" not in codes(r)
    assert [d.code for d in r.errors] == ["ABL0301"]  # entry_point 'begin'


def test_step_then_escalate_with_reason() -> None:
    r = compile_ok(
        src("""
        FLOW:
          give_up:
            REASONING: false
            RESPOND: "Passing you on."
            THEN: ESCALATE with REASON: "Parcel lost twice"
        """)
    )
    p = r.program
    assert p is not None and p.flow is not None
    step = p.flow.steps["give_up"]
    assert step.then == "ESCALATE"
    assert step.extra["then_reason"] == "Parcel lost twice"


def test_on_failure_after_call_is_the_calls_failure_branch() -> None:
    r = compile_ok(
        src("""
        TOOLS:
          ping(host: string) -> {ok: boolean}
        FLOW:
          probe:
            REASONING: false
            CALL: ping
              WITH:
                host: "gw"
              AS: pong
            ON_FAILURE:
              RESPOND: "Gateway down."
              THEN: done
            THEN: done
          done:
            REASONING: false
            RESPOND: "Bye."
        """)
    )
    (call,) = _calls(r.program)
    assert len(call.on_fail) == 1
    gotos = [a.step for a in call.on_fail[0].actions if isinstance(a, ir.Goto)]
    assert gotos == ["done"]
    assert "ABL0105" not in codes(r)


def test_respond_template_reference_is_not_sent_as_text() -> None:
    r = compile_ok(
        src("""
        FLOW:
          receipt:
            REASONING: false
            RESPOND: TEMPLATE(order_receipt)
          quoted:
            REASONING: false
            RESPOND: "TEMPLATE(order_receipt)"
        """)
    )
    p = r.program
    assert p is not None and p.flow is not None
    (a,) = p.flow.steps["receipt"].actions
    assert isinstance(a, ir.Unsupported) and a.keyword == "RESPOND"
    assert "ABL0401" in codes(r)
    (b,) = p.flow.steps["quoted"].actions
    assert isinstance(b, ir.Respond) and b.text.source == "TEMPLATE(order_receipt)"


def test_positional_call_arguments_map_onto_an_imported_tool() -> None:
    # The project's imported tools (bot function import) are known while the flow is
    # lowered, so positional arguments take their parameter names too.
    declared = compile_ok(
        src("""
        TOOLS:
          find_room(city: string, nights: number, guests: number = 1) -> object
        """)
    ).program
    assert declared is not None
    (imported,) = declared.tools
    r = compile_source(
        src("""
        FLOW:
          look:
            REASONING: false
            GATHER:
              - town: required
            CALL: find_room(town, 3)
            THEN: END
        """),
        imported_tools=(imported,),
    )
    assert r.ok, [d.format() for d in r.errors]
    (c,) = _calls(r.program)
    assert [a.name for a in c.args] == ["city", "nights"]
    assert r.program is not None and [t.name for t in r.program.tools] == ["find_room"]

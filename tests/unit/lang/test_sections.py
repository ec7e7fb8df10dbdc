"""Each section of the reference, valid and broken, in both syntaxes."""

from __future__ import annotations

from chatplane.lang import compile_source, ir
from chatplane.lang.expr_ast import Semantic
from tests.unit.lang.conftest_helpers import codes, compile_ok, src


def test_minimal_agent_and_identity() -> None:
    p = compile_ok(
        src("""
        VERSION: "2.0.0"
        DESCRIPTION: "d"
        LANGUAGE: en
        PERSONA: |
          Friendly.
          Patient.
        INSTRUCTIONS: |
          Be brief.
        LIMITATIONS:
          - "No payments"
          - No refunds
        """)
    ).program
    assert p is not None
    assert (p.name, p.goal, p.version, p.language) == ("T", "g", "2.0.0", "en")
    assert p.persona == "Friendly.\nPatient.\n"
    assert p.limitations == ("No payments", "No refunds")


def test_missing_agent_and_goal() -> None:
    r = compile_source("PERSONA: x\n")
    assert codes(r).count("ABL0106") == 2
    assert r.program is None


def test_tools_signature_and_http() -> None:
    p = compile_ok(
        src("""
        TOOLS:
          lookup(id: string, limit?: number = 10, note?: string) -> {name: string, tags: string[]}
            description: "Find"
            type: http
            endpoint: "https://x.example/api"
            method: post
            headers:
              X-Key: "abc"
            timeout: 3000
          local_thing() -> string
        """)
    ).program
    assert p is not None
    t = p.tools[0]
    assert [(q.name, q.type, q.optional, q.default) for q in t.params] == [
        ("id", "string", False, None),
        ("limit", "number", True, 10),
        ("note", "string", True, None),
    ]
    assert t.returns == "{name: string, tags: string[]}"
    assert t.http == ir.HttpConfig("https://x.example/api", "POST", {"X-Key": "abc"}, 3000)
    assert p.tools[1].http is None


def test_bad_tool_signature() -> None:
    r = compile_source(src("TOOLS:\n  lookup(id string -> x\n"))
    assert "ABL0109" in codes(r)


def test_unsupported_tool_type_warns() -> None:
    r = compile_source(src("TOOLS:\n  f(a: string) -> string\n    type: mcp\n"))
    assert r.ok and any("not supported yet: tool type 'mcp'" in d.message for d in r.warnings)


def test_gather_top_level() -> None:
    p = compile_ok(
        src("""
        GATHER:
          amount:
            prompt: "How much?"
            type: number
            validate: min(1)
            max_retries: 2
          plan:
            prompt: "Which plan?"
            type: enum
            options: [basic, pro]
            required: false
            default: basic
        """)
    ).program
    assert p is not None
    a, b = p.gather
    assert a.validate == ir.Validation("min", "min(1)", args=(1,))
    assert (b.options, b.required, b.default) == (("basic", "pro"), False, "basic")


def test_memory_session_vars() -> None:
    p = compile_ok(
        src("""
        MEMORY:
          session:
            - customer_id
            - total
              TYPE: number
              INITIAL: 0
          remember:
            - WHEN: x IS SET
              STORE: x -> user.x
        """)
    ).program
    assert p is not None
    assert p.memory.session == (ir.MemoryVar("customer_id"), ir.MemoryVar("total", "number", 0))
    assert "remember" in p.memory.extra


FLOW = """
FLOW:
  entry_point: start
  steps:
    - start
    - ask
    - done
  start:
    REASONING: false
    SET:
      status = "pending"
      n = ADD(1, 2)
    RESPOND: "Hi {{status}}"
    THEN: ask
  ask:
    REASONING: false
    WHEN: status == "pending"
    MAX_ATTEMPTS: 3
    ON_EXHAUSTED: done
    GATHER:
      - email: required
        prompt: "Email?"
    CHECK: email contains "@"
    ON_FAIL: ask
    THEN: done
  done:
    REASONING: true
    GOAL: "wrap up"
    AVAILABLE_TOOLS: []
    EXIT_WHEN: finished == true
"""


def test_flow_steps_and_actions() -> None:
    r = compile_source(src(FLOW))
    p = r.program
    assert p is not None and p.flow is not None, [d.format() for d in r.diagnostics]
    f = p.flow
    assert f.entry_point == "start" and f.order == ("start", "ask", "done")
    start = f.steps["start"]
    assert [type(a).__name__ for a in start.actions] == ["Set", "Set", "Respond"]
    assert start.then == "ask"
    ask = f.steps["ask"]
    assert ask.max_attempts == 3 and ask.on_exhausted == "done" and ask.when is not None
    chk = ask.actions[1]
    assert isinstance(chk, ir.Check) and chk.on_fail == (ir.Goto("ask", chk.on_fail[0].line),)
    done = f.steps["done"]
    assert done.reasoning and done.max_turns == 10 and done.goal == "wrap up"
    assert "ABL0303" in codes(r)  # `finished` is never written


def test_flow_undefined_step_suggests() -> None:
    r = compile_source(src(FLOW.replace("THEN: done\n  done", "THEN: dnoe\n  done")))
    msgs = [d.message for d in r.errors]
    assert any("names step 'dnoe', which is not defined; did you mean 'done'?" in m for m in msgs)


def test_unreachable_step() -> None:
    r = compile_source(src(FLOW + "  orphan:\n    REASONING: false\n    RESPOND: x\n"))
    assert "ABL0302" in codes(r)


def test_call_with_as_and_branches() -> None:
    p = compile_ok(
        src("""
        TOOLS:
          verify(account_id: string) -> {status: string}
        FLOW:
          s:
            REASONING: false
            CALL: verify
              WITH:
                account_id: "A1"
              AS: res
            ON_RESULT:
              - IF: res.status == "active"
                RESPOND: "ok"
                THEN: s
              - ELSE:
                THEN: s
            ON_FAIL:
              RESPOND: "failed"
        """)
    ).program
    assert p is not None and p.flow is not None
    call = p.flow.steps["s"].actions[0]
    assert isinstance(call, ir.CallTool)
    assert call.as_var == "res" and call.args[0].name == "account_id"
    assert len(call.on_result) == 2 and call.on_result[1].cond is None
    assert len(call.on_fail) == 1


def test_call_checks_signature() -> None:
    r = compile_source(
        src("""
        TOOLS:
          verify(account_id: string, pin: string) -> object
        FLOW:
          s:
            REASONING: false
            CALL: verify
              WITH:
                acount_id: "A"
            CALL: missing_tool
        """)
    )
    msgs = " ".join(d.message for d in r.errors)
    assert "did you mean 'account_id'" in msgs
    assert "missing required argument(s) account_id, pin" in msgs
    assert "tool 'missing_tool', which is not declared" in msgs


def test_on_start_branches() -> None:
    p = compile_ok(
        src("""
        ON_START:
          SET:
            ready = true
          BRANCHES:
            - IF: ready == true
              RESPOND: "Welcome back"
            - ELSE:
              RESPOND: "Welcome"
        """)
    ).program
    assert p is not None
    assert isinstance(p.on_start[0], ir.Set) and isinstance(p.on_start[1], ir.Branches)


def test_handoff_escalate_complete_and_known_agents() -> None:
    text = src("""
        HANDOFF:
          - TO: Billing
            WHEN: "wants_refund == true"
            CONTEXT:
              pass: [order_id]
              summary: "Refund for {{order_id}}"
        ESCALATE:
          triggers:
            - WHEN: angry == true
              REASON: "angry"
              PRIORITY: high
          context_for_human: [order_id]
        COMPLETE:
          - WHEN: done == true
            RESPOND: "bye"
        MEMORY:
          session: [order_id, wants_refund, angry, done]
        """)
    p = compile_ok(text, known_agents=frozenset({"Billing"})).program
    assert p is not None
    h = p.handoffs[0]
    assert (h.target, h.pass_vars, h.history) == ("Billing", ("order_id",), "full")
    assert p.escalate is not None and p.escalate.triggers[0].priority == "high"
    assert p.complete[0].respond is not None
    r = compile_source(text, known_agents=frozenset({"Billling_Agent"}))
    assert "ABL0306" in codes(r)


def test_on_error_map_and_list_forms() -> None:
    p = compile_ok(
        src("""
        ON_ERROR:
          tool_error:
            RESPOND: "retrying"
            RETRY: 2
            THEN: CONTINUE
          unknown_error: ESCALATE
        FLOW:
          s:
            REASONING: false
            ON_ERROR:
              - TYPE: tool_timeout
                THEN: HANDOFF Support
            RESPOND: x
        """)
    ).program
    assert p is not None and p.flow is not None
    assert [(h.type, h.then) for h in p.on_error] == [
        ("tool_error", "CONTINUE"),
        ("unknown_error", "ESCALATE"),
    ]
    h = p.flow.steps["s"].on_error[0]
    assert (h.type, h.subtypes, h.then, h.handoff_target) == (
        "tool_error",
        ("tool_timeout",),
        "HANDOFF",
        "Support",
    )


def test_on_error_then_step_name_is_error() -> None:
    r = compile_source(src("ON_ERROR:\n  tool_error:\n    THEN: some_step\n"))
    assert "ABL0308" in codes(r) and not r.ok


def test_unsupported_sections_warn_with_line() -> None:
    r = compile_source(src("GUARDRAILS:\n  input:\n    - x\nNLU:\n  model: y\n"))
    assert r.ok
    msgs = [d.message for d in r.warnings]
    assert "not supported yet: guardrails, line 3" in msgs
    assert "not supported yet: NLU, line 6" in msgs
    assert r.program is not None
    assert [s.name for s in r.program.sections] == ["GUARDRAILS", "NLU"]


def test_mode_is_deprecated_error() -> None:
    assert "ABL0107" in codes(compile_source(src("MODE: reasoning\n")))


def test_mixed_case_is_error() -> None:
    r = compile_source('AGENT: T\ngoal: "g"\n')
    assert "ABL0002" in codes(r)
    r = compile_source('agent: T\nGOAL: "g"\n')
    assert "ABL0002" in codes(r)


def test_semantic_condition_is_warning() -> None:
    r = compile_source(src("COMPLETE:\n  - WHEN: the customer is happy now\n"))
    assert r.ok and "ABL0203" in codes(r)
    assert r.program is not None
    cond = r.program.complete[0].when
    assert cond is not None and isinstance(cond.root, Semantic)


def test_bad_expression_and_template() -> None:
    r = compile_source(
        src("""
        FLOW:
          s:
            REASONING: false
            SET:
              x = ADD(1,
            RESPOND: "Hi {{#if a}}x"
            CHECK: a == == b
        """)
    )
    assert {"ABL0201", "ABL0202"} <= set(codes(r))
    assert all(d.line > 2 for d in r.errors)


def test_duplicate_names() -> None:
    r = compile_source(src("TOOLS:\n  a() -> string\n  a() -> string\nGOAL: x\n"))
    assert codes(r).count("ABL0307") == 1 and "ABL0104" in codes(r)


def test_yaml_variant_detected() -> None:
    r = compile_source('agent: T\ngoal: "g"\npersona: |\n  Nice.\n')
    assert r.format == "yaml" and r.ok
    assert r.program is not None and r.program.persona == "Nice.\n"


def test_yaml_syntax_error_has_position() -> None:
    r = compile_source('agent: T\ngoal: "g\n  x: [\n')
    assert r.errors and r.errors[0].code == "ABL0003" and r.errors[0].line >= 2


def test_all_errors_at_once() -> None:
    r = compile_source(
        src("""
        FLOW:
          a:
            REASONING: maybe
            THEN: nowhere
          b:
            REASONING: false
            CALL: ghost
        """)
    )
    assert {"ABL0108", "ABL0301", "ABL0304"} <= set(codes(r))


def test_unknown_function_warns_with_suggestion() -> None:
    r = compile_source(src("ON_START:\n  SET:\n    x = COALESE(a, 1)\nMEMORY:\n  session: [a]\n"))
    assert any("did you mean 'COALESCE'" in d.message for d in r.warnings if d.code == "ABL0204")

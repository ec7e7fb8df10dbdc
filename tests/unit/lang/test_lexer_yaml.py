"""Block-level syntax: blocks, comments, inline collections; the YAML variant's sections."""

from __future__ import annotations

import textwrap

from chatplane.lang import compile_source, ir
from chatplane.lang.lexer import lex, strip_comment
from chatplane.lang.source import Sink
from tests.unit.lang.conftest_helpers import codes


def test_pipe_blocks_keep_comments_and_blank_lines() -> None:
    r = compile_source(
        "AGENT: T\nGOAL: |\n  # heading, not a comment\n\n  line two\nPERSONA: >\n  a\n  b\n"
    )
    assert r.program is not None
    assert r.program.goal == "# heading, not a comment\n\nline two\n"
    assert r.program.persona == "a b\n"


def test_trailing_comments_and_hash_in_templates() -> None:
    assert strip_comment('x: "a # b"  # note') == 'x: "a # b"'
    assert strip_comment("RESPOND: {{#if a}}x{{/if}}") == "RESPOND: {{#if a}}x{{/if}}"
    assert strip_comment("CATEGORY: image        # image | document") == "CATEGORY: image"


def test_multiline_inline_list_and_unterminated_string() -> None:
    sink = Sink()
    out = lex('CLEAR: [a,\n  b,\n  c]\nRESPOND: "open\n', sink)
    assert out[0].value == "[a, b, c]"
    assert [d.code for d in sink.items] == ["ABL0102"]


def test_yaml_on_start_on_error_and_flow_call() -> None:
    text = textwrap.dedent("""\
        agent: Y
        goal: g
        tools:
          - name: ping
            parameters:
              - name: host
                type: string
        on_start:
          set:
            ready: true
          respond: "Hello"
        on_error:
          tool_error:
            respond: "oops"
            then: CONTINUE
        flow:
          a:
            reasoning: false
            call: ping
            with:
              host: '"example.com"'
            as: pong
            then: b
          b:
            reasoning: true
            goal: chat
        """)
    r = compile_source(text)
    assert r.format == "yaml" and r.ok, [d.format() for d in r.diagnostics]
    p = r.program
    assert p is not None and p.flow is not None
    assert isinstance(p.on_start[0], ir.Set) and isinstance(p.on_start[1], ir.Respond)
    assert p.on_error[0].then == "CONTINUE"
    call = p.flow.steps["a"].actions[0]
    assert isinstance(call, ir.CallTool) and call.as_var == "pong" and call.args[0].name == "host"


def test_yaml_uppercase_section_is_mixed() -> None:
    assert "ABL0002" in codes(
        compile_source("agent: Y\ngoal: g\nFLOW:\n  a:\n    reasoning: false\n")
    )

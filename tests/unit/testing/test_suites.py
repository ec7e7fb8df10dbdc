"""Suite files (both shapes), test cases, and the text / flow / context assertions."""

from __future__ import annotations

from chatplane.testing import suites


def test_stored_test_steps_split_into_cases_at_start_flow() -> None:
    doc = {
        "response": {
            "testSteps": [
                {
                    "input": "Start_Flow",
                    "event": "Start_Flow",
                    "outputs": [
                        {
                            "text": "hi",
                            "assertions": {
                                "flowLevel": {"enabled": False, "contains": []},
                                "text": {"enabled": True, "contains": [{"text": "hi"}]},
                                "context": {"enabled": False, "contains": []},
                            },
                        }
                    ],
                },
                {"input": "a", "outputs": [{"text": "b"}]},
                {"input": "Start_Flow", "event": "Start_Flow", "outputs": []},
            ]
        }
    }
    steps, problems = suites.normalize(doc)
    assert problems == []
    assert [name for name, _ in suites.cases(steps)] == ["case 1", "case 2"]
    assert steps[0]["outputs"][0]["nodeId"] == ""  # the vendor's output fields filled in


def test_problems_per_step() -> None:
    _, problems = suites.normalize({"testSteps": [{"input": "x"}, 3, {"input": "y", "event": "E"}]})
    assert [p["step"] for p in problems] == [2, 3]


def test_text_dynamic_spans_and_one_of() -> None:
    assert suites.text_matches("Your code is {{code}}.", "Your  code is 1234.")
    assert not suites.text_matches("Your code is {{code}}.", "Your PIN is 1234.")
    out = {
        "text": "",
        "assertions": {"text": {"enabled": True, "contains": [{"text": "a"}, {"text": "b"}]}},
    }
    checked, reasons = suites.check_output(out, suites.Observed("b", "A", "s", "continue", {}))
    assert reasons == [] and [c["status"] for c in checked["assertions"]["text"]["contains"]] == [
        "failed",
        "passed",
    ]


def test_flow_and_context_failures_name_the_assertion() -> None:
    out = {
        "assertions": {
            "flowLevel": {
                "enabled": True,
                "contains": [{"nodeId": "ask", "actionType": "complete"}],
            },
            "context": {"enabled": True, "contains": [{"key": "user.email", "value": "a@b.c"}]},
        }
    }
    seen = suites.Observed("x", "A", "ask", "continue", {"user": {"email": "z@b.c"}})
    checked, reasons = suites.check_output(out, seen)
    assert checked["status"] == "failed"
    assert checked["assertions"]["flowLevel"]["status"] == "failed"
    assert reasons[0] == "flow: expected action 'complete', got 'continue'"
    assert reasons[1].startswith("context: user.email expected")

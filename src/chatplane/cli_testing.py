"""`chatplane test run <suite.json> --project P [--deployment D] [--junit out.xml]`.

Runs a conversation test suite file through the REST API at `CHATPLANE_URL` (default
http://127.0.0.1:8080) with `CHATPLANE_API_KEY` (or `--url` / `--key`), the way any CI job
would: upload the file, import it (the server validates it by replaying it), run it on the
draft / dev deployment (`--published`: production; `--deployment`: that deployment),
wait, print one line per test case and a summary, write JUnit XML, and exit 1 when a case
failed (2 when the suite could not be imported or run). The imported suite is deleted
afterwards unless `--keep`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from chatplane.cli_http import DEFAULT_URL, Client, HttpFailure

COMMANDS = ("test",)


def add_parsers(sub: Any) -> None:
    test = sub.add_parser("test", help="conversation test suites").add_subparsers(
        dest="test_command", required=True
    )
    run = test.add_parser("run", help="run a suite file against a project; JUnit XML")
    run.add_argument("suite", metavar="SUITE.json")
    run.add_argument("--project", required=True, help="project (bot) id")
    run.add_argument("--deployment", default="", help="a deployment id to run on")
    run.add_argument("--published", action="store_true", help="run on production")
    run.add_argument("--junit", default="", metavar="OUT.xml", help="write JUnit XML here")
    run.add_argument("--name", default="", help="suite name (default: the file's stem)")
    run.add_argument("--keep", action="store_true", help="keep the imported suite")
    run.add_argument("--timeout", type=float, default=600.0, help="seconds to wait (600)")
    run.add_argument("--url", help=f"the REST API (default $CHATPLANE_URL or {DEFAULT_URL})")
    run.add_argument("--key", help="an API key (default $CHATPLANE_API_KEY)")


class CliError(Exception):
    pass


class SuiteClient(Client):
    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> Any:
        try:
            return super().call(method, path, body, raw=raw, content_type=content_type)
        except HttpFailure as exc:
            if not exc.status:
                raise CliError(exc.message) from None
            errors = exc.json().get("errors") or []  # the XO routes' envelope
            try:
                message = errors[0]["msg"] if errors else exc.message
            except (KeyError, TypeError, IndexError):
                message = exc.message
            raise CliError(f"{method} {path}: {exc.status} {message}") from None

    def upload(self, name: str, data: bytes) -> str:
        boundary = uuid.uuid4().hex
        parts = [
            (b'Content-Disposition: form-data; name="fileContext"\r\n\r\nbulkImport'),
            (b'Content-Disposition: form-data; name="fileExtension"\r\n\r\njson'),
            (
                b'Content-Disposition: form-data; name="file"; filename="'
                + name.replace('"', "").encode()
                + b'"\r\nContent-Type: application/json\r\n\r\n'
                + data
            ),
        ]
        sep = b"--" + boundary.encode()
        body = b"".join(sep + b"\r\n" + p + b"\r\n" for p in parts) + sep + b"--\r\n"
        reply = self.call(
            "POST",
            "/api/public/uploadfile",
            raw=body,
            content_type=f"multipart/form-data; boundary={boundary}",
        )
        return str(reply["fileId"])


def _q(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def _wait(client: SuiteClient, path: str, done: set[str], deadline: float) -> dict[str, Any]:
    delay = 0.2
    while True:
        reply: dict[str, Any] = client.call("GET", path)
        if reply.get("status") in done:
            return reply
        if time.monotonic() > deadline:
            raise CliError(f"timed out waiting for {path}")
        time.sleep(delay)
        delay = min(2.0, delay * 1.5)


def run(args: argparse.Namespace) -> int:
    try:
        client = SuiteClient.from_options(args.url, args.key)
    except HttpFailure as exc:
        print(f"chatplane: {exc.message}", file=sys.stderr)
        return 2
    path = Path(args.suite)
    try:
        result = run_suite(client, path, args)
    except (CliError, OSError) as exc:
        print(f"chatplane: {exc}", file=sys.stderr)
        return 2
    cases = _cases(result)
    for name, steps in cases.items():
        failed = [s for s in steps if s["status"] != "passed"]
        mark = "FAIL" if failed else "ok  "
        print(f"{mark} {name} ({len(steps)} steps)")
        for step in failed:
            for reason in step.get("failureReasons") or ["failed"]:
                print(f"       step {step['input']!r}: {reason}")
    bad = sum(1 for steps in cases.values() if any(s["status"] != "passed" for s in steps))
    details = result["result"].get("stepDetails", {})
    print(
        f"{len(cases) - bad} passed, {bad} failed test cases; steps "
        f"{details.get('passed', 0)}/{details.get('total', 0)} passed "
        f"in {result['result'].get('duration', 0)} ms"
    )
    if args.junit:
        write_junit(Path(args.junit), args.name or path.stem, result)
    return 1 if bad or result["status"] != "passed" else 0


def run_suite(client: SuiteClient, path: Path, args: argparse.Namespace) -> dict[str, Any]:
    data = path.read_bytes()
    project = _q(args.project)
    name = args.name or path.stem
    base = f"/api/public/stream/{project}/conversation/testsuite"
    deadline = time.monotonic() + args.timeout
    file_id = client.upload(path.name, data)
    started = client.call("POST", f"{base}/import", {"fileName": file_id, "name": name})
    imported = _wait(
        client, f"{base}/import/{_q(started['dsId'])}/status", {"SUCCESS", "FAILED"}, deadline
    )
    if imported["status"] != "SUCCESS":
        problems = "; ".join(f"step {e['step']}: {e['msg']}" for e in imported.get("errors", []))
        raise CliError(f"the suite was not imported: {imported.get('reason', '')} {problems}")
    try:
        body: dict[str, Any] = {"version": "published" if args.published else "inDevelopment"}
        if args.deployment:
            body["deploymentId"] = args.deployment
        run_id = client.call("POST", f"{base}/{_q(name)}/run", body)["testRunId"]
        return _wait(
            client, f"{base}/{_q(name)}/{_q(run_id)}/status", {"passed", "failed"}, deadline
        )
    finally:
        if not args.keep:
            with contextlib.suppress(CliError):
                client.call("DELETE", base, {"testSuiteNames": [name]})


def _cases(result: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    cases: dict[str, list[dict[str, Any]]] = {}
    for step in result["result"].get("executionResults", []):
        cases.setdefault(str(step.get("testCase") or "case"), []).append(step)
    if not cases and result["result"].get("errorDetails"):
        cases["suite"] = [
            {
                "input": "",
                "status": "failed",
                "failureReasons": [str(result["result"]["errorDetails"])],
            }
        ]
    return cases


def write_junit(target: Path, suite_name: str, result: dict[str, Any]) -> None:
    """One <testcase> per test case; a failing one has a <failure> naming every failed
    assertion of every failed step."""
    cases = _cases(result)
    failures = sum(1 for s in cases.values() if any(x["status"] != "passed" for x in s))
    seconds = result["result"].get("duration", 0) / 1000
    root = ET.Element("testsuites", tests=str(len(cases)), failures=str(failures))
    suite = ET.SubElement(
        root,
        "testsuite",
        name=suite_name,
        tests=str(len(cases)),
        failures=str(failures),
        errors="0",
        time=f"{seconds:.3f}",
    )
    for name, steps in cases.items():
        case = ET.SubElement(suite, "testcase", classname=suite_name, name=name)
        failed = [s for s in steps if s["status"] != "passed"]
        if failed:
            lines = [
                f"step {s['input']!r}: {reason}"
                for s in failed
                for reason in s.get("failureReasons") or ["failed"]
            ]
            failure = ET.SubElement(case, "failure", message=lines[0][:500], type="AssertionError")
            failure.text = "\n".join(lines)
    target.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(target, encoding="utf-8", xml_declaration=True)

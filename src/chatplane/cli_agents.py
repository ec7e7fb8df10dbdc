"""`chatplane agents check|push` and `chatplane deploy`: agents kept in git.

`check` compiles files locally and prints `file:line:col: error|warning: message [CODE]`
like a compiler (exit 1 on errors; no server needed; HANDOFF targets are not checked,
the project is unknown). `push` and `deploy` go through the REST API at `CHATPLANE_URL`
(default http://127.0.0.1:8080) with `CHATPLANE_API_KEY`, or `--url` / `--key`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatplane.cli_http import DEFAULT_URL, Client, HttpFailure, quote_path
from chatplane.lang import compile_source

COMMANDS = ("agents", "deploy")
SUFFIXES = (".abl", ".yaml", ".yml")


def add_parsers(sub: Any) -> None:
    """Register `agents` and `deploy` on the top-level subparsers."""
    agents = sub.add_parser("agents", help="check and push agent sources").add_subparsers(
        dest="agents_command", required=True
    )
    check = agents.add_parser("check", help="compile agent files and print diagnostics")
    check.add_argument("files", nargs="+", metavar="FILE", help="files or directories")
    push = agents.add_parser("push", help="save every agent of a directory to a project")
    push.add_argument("dir", metavar="DIR")
    push.add_argument("--project", required=True, help="project id")
    _api_options(push)

    deploy = sub.add_parser("deploy", help="deploy a project's agents to an environment")
    deploy.add_argument("--project", required=True, help="project id")
    deploy.add_argument("--env", default="dev", choices=("dev", "staging", "production"))
    deploy.add_argument("--entry", required=True, help="the entry agent's name")
    deploy.add_argument("--label", default="", help="a free label, e.g. a git commit")
    _api_options(deploy)


def _api_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help=f"the REST API (default $CHATPLANE_URL or {DEFAULT_URL})")
    parser.add_argument("--key", help="an API key (default $CHATPLANE_API_KEY)")


def run(args: argparse.Namespace) -> int:
    if args.command == "deploy":
        return _deploy(args)
    if args.agents_command == "check":
        return check(args.files)
    return _push(args)


# --- check ---------------------------------------------------------------------------------


def agent_files(paths: list[str]) -> list[Path]:
    """The files named, and the agent files (.abl, .yaml, .yml) of directories named."""
    out: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.suffix in SUFFIXES and p.is_file())
        else:
            out.append(path)
    return out


def check(paths: list[str]) -> int:
    errors = warnings = 0
    files = agent_files(paths)
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            print(f"{path}: error: cannot read: {exc}")
            errors += 1
            continue
        result = compile_source(text)
        for d in result.diagnostics:
            print(d.format(str(path)))
        errors += len(result.errors)
        warnings += len(result.warnings)
    print(
        f"{len(files)} file(s): {errors} error(s), {warnings} warning(s)",
        file=sys.stderr,
    )
    return 1 if errors else 0


# --- the REST API --------------------------------------------------------------------------


@dataclass(frozen=True)
class Api:
    client: Client

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Api:
        try:
            return cls(Client.from_options(args.url, args.key))
        except HttpFailure as exc:
            raise ApiError(exc.message) from None

    def call(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return dict(self.client.call(method, path, body))
        except HttpFailure as exc:
            raise ApiError.of(exc) from None


class ApiError(Exception):
    def __init__(self, message: str, status: int = 0, violations: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.violations = violations or []

    @classmethod
    def of(cls, exc: HttpFailure) -> ApiError:
        """From chatplane's error body: `message` and the BadRequest field violations."""
        if not exc.status:
            return cls(exc.message)
        body = exc.json()
        message = str(body.get("message") or exc.message)
        violations = [
            str(v.get("description", ""))
            for detail in body.get("details", [])
            if isinstance(detail, dict)
            for v in detail.get("fieldViolations", [])
        ]
        return cls(f"{exc.status}: {message}", exc.status, violations)


# --- push ----------------------------------------------------------------------------------


def _push(args: argparse.Namespace) -> int:
    try:
        api = Api.from_args(args)
    except ApiError as exc:
        print(f"chatplane: {exc.message}", file=sys.stderr)
        return 1
    directory = Path(args.dir)
    if not directory.is_dir():
        print(f"chatplane: {directory} is not a directory", file=sys.stderr)
        return 1
    pending: list[tuple[Path, str, str]] = []  # (file, agent name, source)
    seen: dict[str, Path] = {}
    failed = 0
    for path in agent_files([str(directory)]):
        text = path.read_text(encoding="utf-8")
        result = compile_source(text)
        if result.program is None:
            for d in result.errors:
                print(d.format(str(path)), file=sys.stderr)
            failed += 1
            continue
        name = result.program.name
        if name in seen:
            print(f"{path}: skipped: agent {name} is already pushed from {seen[name]}")
            continue
        seen[name] = path
        pending.append((path, name, text))
    # HANDOFF targets must exist first: retry those refused only for a missing agent.
    while pending:
        retry: list[tuple[Path, str, str]] = []
        last: dict[Path, ApiError] = {}
        for path, name, text in pending:
            try:
                where = quote_path("api", "projects", args.project, "agents", name)
                saved = api.call("PUT", where, {"source": text})
            except ApiError as exc:
                if (
                    exc.status == 400
                    and exc.violations
                    and all("[ABL0306]" in v for v in exc.violations)
                ):
                    retry.append((path, name, text))
                    last[path] = exc
                    continue
                _report(path, exc)
                if exc.status in (0, 401, 403, 404):
                    return 1  # the same for every file
                failed += 1
                continue
            agent = saved.get("agent", {})
            print(f"{path}: pushed {name} ({agent.get('format')}, id {agent.get('id')})")
            for w in agent.get("warnings", []):
                where = f"{path}:{w.get('line')}:{w.get('column')}"
                print(f"{where}: warning: {w.get('message')} [{w.get('code')}]")
        if len(retry) == len(pending):  # no progress: report and stop
            for path, _, _ in retry:
                _report(path, last[path])
            failed += len(retry)
            break
        pending = retry
    return 1 if failed else 0


def _report(path: Path, exc: ApiError) -> None:
    print(f"{path}: {exc.message}", file=sys.stderr)
    for violation in exc.violations:
        print(f"  {violation}", file=sys.stderr)


# --- deploy --------------------------------------------------------------------------------


def _deploy(args: argparse.Namespace) -> int:
    try:
        api = Api.from_args(args)
        body = {"environment": args.env, "entryAgentName": args.entry}
        if args.label:
            body["label"] = args.label
        created = api.call("POST", quote_path("api", "projects", args.project, "deployments"), body)
    except ApiError as exc:
        print(f"chatplane: {exc.message}", file=sys.stderr)
        for violation in exc.violations:
            print(f"  {violation}", file=sys.stderr)
        return 1
    d = created.get("deployment", {})
    agents = ", ".join(str(a.get("name")) for a in d.get("agents", []))
    print(
        f"deployed {d.get('id')} to {d.get('environment')} ({d.get('status')}), "
        f"entry {d.get('entryAgentName')}, agents: {agents}"
    )
    return 0

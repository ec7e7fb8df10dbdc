"""Agent language benchmarks: `python -m bench.lang_bench [--quick]`.

- Compile: one generated 500-line ABL agent (tools, gather, a flow of steps with CALL,
  CHECK, SET, RESPOND and templates), `compile_source` repeated; target p50 < 20 ms.
- Deploy: a 20-agent project (each agent about 100 lines, the first handing off to the
  others) deployed through `DeploymentService.create` on a fresh SQLite database:
  recompiling every agent, storing the snapshot, the lifecycle update; target < 1 s.

No server, no Envoy: these time the work itself. `make bench` runs it in-process too.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass

from chatplane.agents.deployments import DeploymentService
from chatplane.agents.service import AgentService
from chatplane.kit.ids import cuid
from chatplane.lang import compile_source
from chatplane.storage.db import Database
from chatplane.storage.models import Project, Tenant

COMPILE_TARGET_MS = 20.0
DEPLOY_TARGET_MS = 1000.0


@dataclass(frozen=True)
class Timing:
    """Milliseconds over repeated runs."""

    name: str
    runs: list[float]
    target_ms: float
    detail: str = ""

    @property
    def p50(self) -> float:
        return statistics.median(self.runs)

    @property
    def max(self) -> float:
        return max(self.runs)

    @property
    def met(self) -> bool:
        return self.p50 < self.target_ms


def agent_source(name: str, lines: int, handoffs: tuple[str, ...] = ()) -> str:
    """A valid ABL agent of about `lines` lines."""
    out = [
        f"AGENT: {name}",
        f'DESCRIPTION: "Generated agent {name} for the benchmark"',
        f'GOAL: "Serve the customer as {name}"',
        'PERSONA: "Concise and friendly."',
        "",
        "TOOLS:",
    ]
    for i in range(5):
        out += [
            f"  tool_{i}(id: string, limit?: number = 10) -> {{status: string, total: number}}",
            f'    description: "Tool number {i}"',
            "    type: http",
            f'    endpoint: "https://api.example.com/tool/{i}"',
            "    method: POST",
            "    timeout: 4000",
            "",
        ]
    out += ["GATHER:"]
    for i in range(5):
        out += [
            f"  field_{i}:",
            f'    prompt: "What is field {i}?"',
            "    type: string",
            "    required: true",
        ]
    out += ["", "MEMORY:", "  session:", "    - done", "      TYPE: boolean", ""]
    if handoffs:
        out += ["HANDOFF:"]
        for target in handoffs:
            out += [f"  - TO: {target}", f'    WHEN: field_0 == "{target}"']
        out += [""]
    step_lines = 12
    steps = max(2, (lines - len(out) - 6) // step_lines)
    out += ["FLOW:", "  entry_point: step_0", "  steps:"]
    out += [f"    - step_{i}" for i in range(steps)]
    out += [""]
    for i in range(steps):
        nxt = f"step_{i + 1}" if i + 1 < steps else None
        out += [
            f"  step_{i}:",
            "    REASONING: false",
            f"    CALL: tool_{i % 5}",
            "      WITH:",
            f"        id: field_{i % 5}",
            f"      AS: result_{i}",
            f'    CHECK: result_{i}.status == "ok" && result_{i}.total > {i}',
            f'    RESPOND: "Step {i}: {{{{result_{i}.status}}}} for {{{{field_{i % 5}}}}}."',
        ]
        if nxt:
            out += [f"    ON_FAIL: {nxt}", f"    THEN: {nxt}", ""]
        else:
            out += ["    SET:", "      done = true", ""]
    return "\n".join(out) + "\n"


def bench_compile(runs: int) -> Timing:
    source = agent_source("Big_Agent", 508)
    lines = source.count("\n")
    result = compile_source(source)
    if not result.ok:
        raise RuntimeError(f"the generated agent does not compile: {result.errors[:3]}")
    for _ in range(3):
        compile_source(source)  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        compile_source(source)
        times.append((time.perf_counter() - started) * 1000)
    return Timing("compile a 500-line agent", times, COMPILE_TARGET_MS, f"{lines} lines")


async def bench_deploy(runs: int, agents: int = 20) -> Timing:
    with tempfile.TemporaryDirectory(prefix="chatplane-lang-bench-") as tmp:
        db = Database(f"sqlite+aiosqlite:///{tmp}/bench.db")
        try:
            await db.migrate()
            tenant = Tenant(id=cuid(), name="bench")
            project = Project(id=cuid(), tenant_id=tenant.id, name="bench")
            async with db.uow() as uow:
                uow.add(tenant)
                await uow.flush()
                uow.add(project)
            deployments = DeploymentService(db)
            service = AgentService(db, deployments=deployments)
            names = [f"Agent_{i:02d}" for i in range(agents)]
            total_lines = 0
            for name in reversed(names):  # handoff targets first
                handoffs = tuple(names[1:6]) if name == names[0] else ()
                source = agent_source(name, 100, handoffs)
                total_lines += source.count("\n")
                await service.put(tenant.id, project.id, name, source)
            await deployments.create(
                tenant.id, project.id, environment="dev", entry_agent_name=names[0]
            )  # warm-up
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                await deployments.create(
                    tenant.id, project.id, environment="dev", entry_agent_name=names[0]
                )
                times.append((time.perf_counter() - started) * 1000)
        finally:
            await db.dispose()
    return Timing(
        f"deploy a {agents}-agent project",
        times,
        DEPLOY_TARGET_MS,
        f"{total_lines} lines in all, SQLite",
    )


async def run(*, quick: bool = False) -> list[Timing]:
    compile_runs, deploy_runs = (30, 5) if quick else (200, 20)
    return [bench_compile(compile_runs), await bench_deploy(deploy_runs)]


def render(timings: list[Timing]) -> list[str]:
    """The report section (Markdown lines)."""
    out = [
        "## C. Agent language: compile and deploy",
        "",
        "In the bench process, no server: `compile_source` on a generated 500-line ABL agent, "
        "and `DeploymentService.create` (recompile every agent, store the snapshot) on a "
        "20-agent project in a fresh SQLite database (`bench/lang_bench.py`).",
        "",
        "| what | runs | p50 ms | max ms | target | p50 met | max met |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in timings:
        what = f"{t.name} ({t.detail})" if t.detail else t.name
        out.append(
            f"| {what} | {len(t.runs)} | {t.p50:.2f} | {t.max:.2f} | "
            f"< {t.target_ms:g} ms | {'met' if t.met else '**missed**'} | "
            f"{'met' if t.max < t.target_ms else '**missed**'} |"
        )
    out.append("")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lang_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    args = parser.parse_args(argv)
    timings = asyncio.run(run(quick=args.quick))
    print("\n".join(render(timings)))
    return 0 if all(t.met for t in timings) else 1


if __name__ == "__main__":
    sys.exit(main())

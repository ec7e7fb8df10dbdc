"""The report: Markdown, printed to stdout and written to BENCHMARKS.md."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from bench import lang_bench, litellm_bench
from bench import profile as server_profile
from bench.stats import Sample, fmt, ratio

if TYPE_CHECKING:
    from bench.runner import Results

ADDED_P50_TARGET_MS = 2.0

LABELS = {
    "direct_json": "fake upstream direct, JSON (baseline)",
    "rest_complete": "REST `POST /api/v1/chat/complete` via Envoy",
    "grpc_complete": "gRPC `CompleteChat` direct",
    "direct_sse": "fake upstream direct, SSE (baseline)",
    "rest_stream": "REST `POST /api/v1/chat/stream` via Envoy",
    "grpc_stream": "gRPC `StreamChat` direct",
}
BASELINE = {
    "rest_complete": "direct_json",
    "grpc_complete": "direct_json",
    "rest_stream": "direct_sse",
    "grpc_stream": "direct_sse",
}
CPU_COLUMNS = ["chatplane server", "Envoy", "fake upstream", "load generator"]


def _signed(value: float, digits: int = 2) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:+.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _errors(sample: Sample) -> str:
    if not sample.errors:
        return "0"
    return f"{sample.errors} ({sample.first_error})"


def _saturation(r: Results) -> list[str]:
    """Say plainly what bounded each chatplane mode's throughput."""
    lines = []
    for name, s in r.cn.items():
        if name not in BASELINE or not s.elapsed or not s.count:
            continue
        server = s.cpu.get("chatplane server", 0.0) / s.elapsed
        total = sum(s.cpu.values()) / s.elapsed
        nproc = float(r.machine.get("nproc") or 0) or float("nan")
        if server >= 0.85:
            what = (
                f"the chatplane server process was busy {server:.2f} cores (its Python event "
                f"loop runs on one core) while the machine as a whole was busy {total:.2f} of "
                f"{nproc:g}: the server's own CPU, {s.cpu['chatplane server'] * 1000 / s.count:.1f}"
                " ms per call, is the bottleneck"
            )
        else:
            what = f"the server used {server:.2f} cores, the machine {total:.2f} of {nproc:g}"
        lines.append(f"- {LABELS[name]}: {what}.")
    return lines


def _floor_row(f: Sample | None, g: Sample) -> list[list[str]]:
    if f is None:
        return []
    return [
        [
            "for scale: gRPC `grpc.health.v1.Health/Check` direct (no auth, no database)",
            str(f.count),
            _errors(f),
            fmt(f.p(50)),
            fmt(f.p(99)),
            ratio(f.p(50), g.p(50)),
            ratio(f.p(99), g.p(99)),
        ]
    ]


def _side_by_side(r: Results) -> list[str]:
    """Sections E (LiteLLM, same run) and F (the server's profile)."""
    if r.litellm is None and r.profile is None:
        return []
    out = litellm_bench.render(r.litellm, r.plan)
    litellm_ms = envoy_ms = None
    if r.litellm is not None and r.litellm.cn.get("litellm"):
        lite = litellm_bench.merge(r.litellm.cn["litellm"])
        litellm_ms = litellm_bench.own_cpu_ms("litellm", lite)
    rest = r.cn.get("rest_complete")
    if rest is not None and rest.count:
        envoy_ms = rest.cpu.get("Envoy", float("nan")) * 1000 / rest.count
    return out + server_profile.render(r.profile, litellm_ms=litellm_ms, envoy_ms=envoy_ms)


def render(r: Results) -> str:
    plan = r.plan
    m = r.machine
    out: list[str] = [
        "# chatplane benchmarks",
        "",
        f"- Command: `{r.command}` from the repository root (`make bench` runs "
        "`python -m bench` with `.venv/bin` first on PATH)",
        f"- Load average (1, 5, 15 min) when the run started: {m.get('loadavg')} (other "
        "work on the machine during the run adds noise)",
        f"- Date: {r.started_at}; the run took {r.duration:.0f} s (start-up, all loads, shutdown)",
        f"- Machine: nproc {m.get('nproc')}, {m.get('cpu')}, {m.get('os')}; Python "
        f"{m.get('python')}; Envoy {m.get('envoy')}, grpcio {m.get('grpcio')}, aiohttp "
        f"{m.get('aiohttp')}, anthropic SDK {m.get('anthropic')}",
        "- Setup: fake Anthropic server (`tests/fakes/anthropic.py`, its own process), "
        "`chatplane.cli serve` (its own process, SQLite in a temp dir, log level WARNING, "
        "rate limits raised out of the way), Envoy with grpc_json_transcoder (its own "
        "process); the load generator (aiohttp for HTTP, grpc.aio for gRPC) in the bench "
        "process. All on 127.0.0.1, ports picked by the OS. Model `claude-haiku-4-5`, so "
        "chatplane calls the fake upstream through its anthropic provider (the real SDK).",
        "- Every figure is compared with a baseline measured in this same run.",
        "",
    ]

    # --- A ---------------------------------------------------------------------------------
    g = r.foundation.get("grpc")
    h = r.foundation.get("rest")
    if g is not None and h is not None:
        out += [
            "## A. Foundation: a cheap call (GetProject), REST via Envoy vs direct gRPC",
            "",
            f"{plan.foundation_calls} sequential calls per path (paths alternating call by "
            f"call), after {plan.foundation_warmup} warm-up calls each.",
            "",
        ]
        out += _table(
            ["path", "calls", "errors", "p50 ms", "p99 ms", "p50 vs gRPC", "p99 vs gRPC"],
            [
                [
                    "gRPC `GetProject` direct (baseline)",
                    str(g.count),
                    _errors(g),
                    fmt(g.p(50)),
                    fmt(g.p(99)),
                    "1.00x",
                    "1.00x",
                ],
                [
                    "REST `GET /api/projects/{id}` via Envoy",
                    str(h.count),
                    _errors(h),
                    fmt(h.p(50)),
                    fmt(h.p(99)),
                    ratio(h.p(50), g.p(50)),
                    ratio(h.p(99), g.p(99)),
                ],
                *_floor_row(r.foundation.get("health"), g),
            ],
        )
        out += [
            "",
            f"Envoy + JSON transcoding add **{_signed(h.p(50) - g.p(50))} ms at p50** and "
            f"{_signed(h.p(99) - g.p(99))} ms at p99 (REST/gRPC p50 ratio "
            f"{ratio(h.p(50), g.p(50))}).",
            "",
        ]

    # --- B1 --------------------------------------------------------------------------------
    if r.c1:
        out += [
            "## B. Chat completions",
            "",
            "### B1. Concurrency 1: latency and added latency over the direct upstream call",
            "",
            f"Up to {plan.c1_rounds} rounds (at most {plan.c1_seconds:g} s); each round makes "
            "one call of every mode in turn, after "
            f"{plan.c1_warmup} warm-up calls per mode. Streams are read to their last event. "
            f"Target: added p50 under {ADDED_P50_TARGET_MS:g} ms.",
            "",
        ]
        rows = []
        for name, s in r.c1.items():
            base_name = BASELINE.get(name)
            if base_name is None:
                rows.append(
                    [LABELS[name], str(s.count), _errors(s), fmt(s.p(50)), fmt(s.p(99))]
                    + ["baseline"] * 3
                    + ["-"]
                )
                continue
            b = r.c1[base_name]
            added = s.p(50) - b.p(50)
            verdict = "met" if added < ADDED_P50_TARGET_MS else "**missed**"
            rows.append(
                [
                    LABELS[name],
                    str(s.count),
                    _errors(s),
                    fmt(s.p(50)),
                    fmt(s.p(99)),
                    _signed(added),
                    _signed(s.p(99) - b.p(99)),
                    ratio(s.p(50), b.p(50)),
                    verdict,
                ]
            )
        out += _table(
            [
                "mode",
                "calls",
                "errors",
                "p50 ms",
                "p99 ms",
                "added p50 ms",
                "added p99 ms",
                "p50 vs direct",
                "added p50 < 2 ms",
            ],
            rows,
        )
        out += [
            "",
            "Time to first token at concurrency 1 (first `text_delta` frame/message via "
            "chatplane; first `content_block_delta` event from the upstream directly):",
            "",
        ]
        base = r.c1.get("direct_sse")
        ttft_rows = []
        for name in ("direct_sse", "rest_stream", "grpc_stream"):
            stream = r.c1.get(name)
            if stream is None or base is None:
                continue
            is_base = name == "direct_sse"
            ttft_rows.append(
                [
                    LABELS[name],
                    fmt(stream.ttft(50)),
                    fmt(stream.ttft(99)),
                    "baseline" if is_base else _signed(stream.ttft(50) - base.ttft(50)),
                    "baseline" if is_base else _signed(stream.ttft(99) - base.ttft(99)),
                ]
            )
        out += _table(
            ["stream", "TTFT p50 ms", "TTFT p99 ms", "TTFT overhead p50 ms", "overhead p99 ms"],
            ttft_rows,
        )
        out.append("")

    # --- B2 --------------------------------------------------------------------------------
    if r.cn:
        out += [
            f"### B2. Concurrency {plan.concurrency}: throughput",
            "",
            f"{plan.concurrency} workers calling back to back, each mode up to "
            f"{plan.cn_seconds:g} s or {plan.cn_max_calls} calls, after {plan.cn_warmup} "
            "warm-up calls. Throughput counts successful calls over the loop's wall time. "
            "CPU columns: CPU time each process used during the loop, per successful call "
            "(the load generator's share includes reading and checking every response).",
            "",
        ]
        rows = []
        for name, s in r.cn.items():
            base_name = BASELINE.get(name)
            base_cn = r.cn.get(base_name) if base_name else None
            busy = sum(s.cpu.values()) / s.elapsed if s.elapsed else float("nan")
            rows.append(
                [
                    LABELS[name],
                    str(s.count),
                    _errors(s),
                    fmt(s.rps, 0),
                    "baseline" if base_cn is None else ratio(s.rps, base_cn.rps),
                    fmt(s.p(50)),
                    fmt(s.p(99)),
                    fmt(s.ttft(50)) if s.ttfts else "-",
                    *(
                        fmt(s.cpu.get(col, float("nan")) * 1000 / s.count if s.count else None)
                        for col in CPU_COLUMNS
                    ),
                    fmt(s.cpu.get("chatplane server", 0.0) / s.elapsed if s.elapsed else None),
                    fmt(busy),
                ]
            )
        out += _table(
            [
                "mode",
                "calls",
                "errors",
                "req/s",
                "vs direct",
                "p50 ms",
                "p99 ms",
                "TTFT p50 ms",
                "CPU ms/call server",
                "Envoy",
                "fake",
                "loadgen",
                "server cores busy",
                "all cores busy",
            ],
            rows,
        )
        out += ["", *_saturation(r), ""]

    two = r.workers2
    if two:
        out += [
            "### B3. Two server processes behind one Envoy (CHATPLANE_WORKERS=2)",
            "",
            "The same REST loops with a second `chatplane serve` on the same database and a "
            "second Envoy round-robining over both. On this 2-core machine the processes "
            "compete with Envoy, the fake upstream and the load generator for the same cores.",
            "",
        ]
        rows = []
        for name, s2 in two.items():
            one = r.cn.get(name)
            rows.append(
                [
                    LABELS[name],
                    fmt(one.rps, 0) if one else "-",
                    fmt(s2.rps, 0),
                    ratio(s2.rps, one.rps) if one else "-",
                    _errors(s2),
                    fmt(s2.p(50)),
                    fmt(s2.p(99)),
                ]
            )
        out += _table(
            ["mode", "req/s, 1 worker", "req/s, 2 workers", "2 vs 1", "errors", "p50 ms", "p99 ms"],
            rows,
        )
        out += [""]

    out += _side_by_side(r)
    if r.lang:
        out += lang_bench.render(r.lang)
    if r.agent:
        out += r.agent
    if r.tracing:
        out += r.tracing

    # --- memory and checks ------------------------------------------------------------------
    if r.rss_peak:
        out += ["### Memory", ""]
        out += _table(
            ["process", "RSS after start-up MiB", "peak RSS (VmHWM) at the end MiB"],
            [
                [name, fmt(r.rss_start.get(name), 1), fmt(peak, 1)]
                for name, peak in r.rss_peak.items()
            ],
        )
        out.append("")
    out += ["### Checks", ""]
    for path, found in r.provider_check.items():
        out.append(f"- {path}: {found} (checked before measuring; the run stops otherwise)")
    if r.usage:
        for entry in r.usage:
            out.append(
                f"- Stored usage after the run: model {entry.get('modelId')}, provider "
                f"{entry.get('provider')}, {entry.get('requestCount')} records"
            )
    out += [
        "",
        "### Notes",
        "",
        f"- The machine has {m.get('nproc')} cores, shared by the load generator, Envoy, the "
        "chatplane server and the fake upstream; the figures are noisy from run to run and "
        "the absolute numbers depend on the machine. The ratios against the baselines of the "
        "same run are what matter.",
        "- The CPU columns say where the time goes at concurrency 20. The load generator's "
        "CPU per call is not chatplane's cost, but it competes for the same cores.",
        "- The direct baselines skip chatplane entirely (the load generator calls the fake "
        "upstream with the same request body the SDK sends), so 'added' latency is "
        "everything chatplane costs: Envoy (REST only), gRPC, authentication, the project "
        "lookup, the Anthropic SDK, usage recording.",
        "- p99 over a few hundred calls rests on a handful of calls; read it as a rough tail.",
        "- Where the server's time goes, what was done about it and why the targets are out "
        "of reach on this machine: docs/performance.md.",
        "- The fake upstream answers at once (no model time); with a real model the same "
        "overheads sit on top of hundreds of milliseconds.",
        "",
    ]
    return "\n".join(out)

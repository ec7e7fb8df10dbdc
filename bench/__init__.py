"""`python -m bench` (`make bench`): chatplane's end-to-end benchmark.

One run starts a fake Anthropic server (its own process), the chatplane gRPC server (its
own process) and Envoy, all on 127.0.0.1 with OS-picked ports, then measures:

A. foundation: GetProject through Envoy (REST) against direct gRPC;
B. chat completions: chatplane REST (Envoy) and gRPC against the fake upstream called
   directly, at concurrency 1 (latency, added latency, time to first token) and at
   concurrency 20 (throughput), plus peak RSS of the server and of Envoy;
E. the LiteLLM proxy side by side, same upstream, same run (bench/litellm_bench.py);
F. where the server's CPU goes, from py-spy samples (bench/profile.py).

LiteLLM and py-spy are installed on first use into var/bench/litellm-venv
(bench/sidevenv.py). CHATPLANE_BENCH_LITELLM=0 / CHATPLANE_BENCH_PROFILE=0 skip E / F;
`--quick` shortens every loop.

Every figure is a ratio or a difference against a baseline measured in the same run. The
report is printed and written to BENCHMARKS.md at the repository root.
"""

import os

# The bench forks children (preexec_fn) while its own gRPC client threads run; with
# gRPC's fork handlers a child could abort before exec ("epoll_wait error: Bad file
# descriptor"). The children exec at once and need no gRPC state from the parent.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

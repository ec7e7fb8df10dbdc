"""`python -m bench.watchdog`: stops the run's processes if the bench process dies abruptly.

The bench writes `<pid> <start time>` lines on this process's stdin as it starts children
(Envoy cannot be tied to the bench's life otherwise), `dir <path>` for its temporary
directory, and `done` after its own clean shutdown. When stdin reaches end of file without
`done` (the bench was killed, even with SIGKILL), each listed process that is still the
same process (same start time) gets SIGTERM, then SIGKILL, and the directory is removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
from pathlib import Path


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (tells a reused pid apart)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the bench; it cleans up
    watched: list[tuple[int, str]] = []
    directories: list[str] = []
    for line in sys.stdin:
        words = line.split(maxsplit=1)
        if words == ["done"]:
            return 0
        if len(words) == 2 and words[0] == "dir":
            directories.append(words[1].strip())
        elif len(words) == 2 and words[0].isdigit():
            watched.append((int(words[0]), words[1].strip()))
    alive = [pid for pid, started in watched if start_time(pid) == started]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(start_time(pid) for pid in alive):
        time.sleep(0.1)
    for pid, started in watched:
        if start_time(pid) == started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for directory in directories:
        if Path(directory).name.startswith("chatplane-bench-"):
            shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A virtualenv beside the project's, for tools the bench runs but chatplane never imports:
the LiteLLM proxy (the side-by-side comparison) and py-spy (the profile).

It lives in `var/bench/litellm-venv` (gitignored), is made with the bench's own Python
(`-m venv`) and filled with pip from the package registry on first use. LiteLLM's
dependency tree conflicts with the project's pins, hence a venv of its own.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV = REPO_ROOT / "var" / "bench" / "litellm-venv"
LITELLM = "litellm[proxy]==1.106.12"
"""The newest `litellm[proxy]` whose dependencies all resolve from the registry (1.108 and
later pin `litellm-proxy-extras` or `litellm-proxy` releases it does not have)."""
PY_SPY = "py-spy==0.4.3"
INSTALL_TIMEOUT = 900.0  # seconds

Say = Callable[[str], None]


@dataclass(frozen=True)
class Tool:
    """An installed tool (`path` set) or why it is not there (`error`)."""

    name: str
    pin: str
    path: Path | None = None
    version: str = ""
    error: str = ""


def _bin(name: str) -> Path:
    return VENV / "bin" / name


def _installed_version(distribution: str) -> str:
    python = _bin("python")
    if not python.exists():
        return ""
    try:
        found = subprocess.run(  # noqa: S603
            [
                str(python),
                "-c",
                f"import importlib.metadata as m; print(m.version({distribution!r}))",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return found.stdout.strip() if found.returncode == 0 else ""


def _pip(pins: list[str], log: Path) -> str:
    """Make the venv if needed and install `pins`; an error text, or "" on success."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        try:
            if not _bin("python").exists():
                subprocess.run(  # noqa: S603
                    [sys.executable, "-m", "venv", str(VENV)],
                    stdout=out,
                    stderr=out,
                    check=True,
                    timeout=120,
                )
            subprocess.run(  # noqa: S603
                [str(_bin("python")), "-m", "pip", "install", "--quiet", *pins],
                stdout=out,
                stderr=out,
                check=True,
                timeout=INSTALL_TIMEOUT,
                env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
            )
        except subprocess.TimeoutExpired:
            return f"`pip install {' '.join(pins)}` took over {INSTALL_TIMEOUT:g} s"
        except (OSError, subprocess.CalledProcessError) as exc:
            lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
            reasons = [line for line in lines if line.startswith("ERROR")][-2:]
            detail = "; ".join(reasons) or str(exc)
            return f"`pip install {' '.join(pins)}` failed: {detail[:400]}"
    return ""


def _ensure(wanted: dict[str, tuple[str, str]], say: Say | None) -> dict[str, Tool]:
    """wanted: tool name -> (pin, executable). Installs what is missing or stale."""
    missing = []
    for pin, _ in wanted.values():
        distribution, version = pin.split("==")
        if _installed_version(distribution.split("[")[0]) != version:
            missing.append(pin)
    error = ""
    if missing:
        if say is not None:
            say(f"installing {', '.join(missing)} into {VENV.relative_to(REPO_ROOT)}")
        log = VENV.parent / "litellm-venv-install.log"
        error = _pip(missing, log)
        if error and len(missing) > 1:  # one bad pin must not keep the others out
            for pin in missing:
                _pip([pin], log)
    tools = {}
    for name, (pin, executable) in wanted.items():
        distribution, version = pin.split("==")
        installed = _installed_version(distribution.split("[")[0])
        if installed == version and _bin(executable).exists():
            tools[name] = Tool(name, pin, _bin(executable), installed)
        else:
            tools[name] = Tool(name, pin, error=error or f"{pin} is not installed")
    return tools


async def ensure(*, litellm: bool, py_spy: bool, say: Say | None = None) -> dict[str, Tool]:
    """The tools asked for, installed on demand (in a thread: pip takes minutes)."""
    wanted = {}
    if litellm:
        wanted["litellm"] = (LITELLM, "litellm")
    if py_spy:
        wanted["py-spy"] = (PY_SPY, "py-spy")
    if not wanted:
        return {}
    return await asyncio.to_thread(_ensure, wanted, say)

"""The Dockerfile's builder stage works on the build context `.dockerignore` lets through
(no Docker engine runs here): the same files, copied the same way, build a wheel that holds
Envoy's files and the license."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _context(into: Path) -> None:
    """Copy what .dockerignore's allowlist (`*`, then `!path` lines, then plain paths that
    exclude again) admits."""
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert "*" in lines, "the allowlist form is what this test understands"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for line in lines:
        if line.startswith("!"):
            source = ROOT / line[1:].rstrip("/")
            if source.is_dir():
                shutil.copytree(source, into / source.name, ignore=ignore)
            else:
                shutil.copy2(source, into / source.name)
    for line in lines:  # plain paths after the allowlist are excluded again (gen/ts/)
        if line and not line.startswith(("!", "#")) and "*" not in line:
            shutil.rmtree(into / line.rstrip("/"), ignore_errors=True)


def test_the_builder_stage_builds_the_wheel_from_the_build_context(tmp_path: Path) -> None:
    context = tmp_path / "src"
    context.mkdir()
    _context(context)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "w"), "."],
        cwd=context,
        check=True,
        timeout=180,
    )
    (wheel,) = (tmp_path / "w").glob("chatplane-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for packaged in ("descriptor.binpb", "envoy.yaml.tmpl", "status.lua"):
        assert f"chatplane/gateway_files/{packaged}" in names
    assert "chatplane/cli.py" in names and "chatplane/ops/v1/ops_service_pb2.py" in names
    info = wheel.name.split("-py")[0] + ".dist-info"  # chatplane-<version>.dist-info
    assert f"{info}/licenses/LICENSE" in names
    metadata = zipfile.ZipFile(wheel).read(f"{info}/METADATA").decode()
    assert "License-Expression: Apache-2.0" in metadata

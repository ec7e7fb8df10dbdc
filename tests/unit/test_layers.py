"""The import-layer contract holds on src/, and fails on an upward or wire import."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_layers", ROOT / "scripts/check_layers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_layers"] = module
    spec.loader.exec_module(module)
    return module


def test_src_keeps_the_layers() -> None:
    assert _checker().check(ROOT / "src" / "chatplane") == []


def test_upward_and_wire_imports_are_reported(tmp_path: Path) -> None:
    src = tmp_path / "chatplane"
    (src / "kit").mkdir(parents=True)
    (src / "lang").mkdir()
    (src / "projects").mkdir()
    (src / "kit" / "ok.py").write_text("import json\n")
    (src / "lang" / "bad.py").write_text(
        "from chatplane.storage.db import Database\nimport sqlalchemy\n"
    )
    (src / "projects" / "bad.py").write_text(
        "from chatplane.api import call\nimport grpc\nfrom chatplane.chat.v1 import x\n"
    )
    problems = "\n".join(_checker().check(src))
    assert "lang may not import chatplane.storage.db (storage)" in problems
    assert "lang does no I/O, may not import sqlalchemy" in problems
    assert "projects may not import chatplane.api (api)" in problems
    assert "projects may not import grpc" in problems
    assert "projects may not import chatplane.chat.v1 (proto)" in problems
    assert "kit/ok.py" not in problems

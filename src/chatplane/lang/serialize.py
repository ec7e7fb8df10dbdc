"""IR <-> JSON. Every dataclass is an object tagged with `"$t"`; round trips are exact."""

from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache
from typing import Any

from chatplane.lang import expr_ast, ir

_CLASSES: dict[str, type] = {}
for _mod in (ir, expr_ast):
    for _name, _obj in vars(_mod).items():
        if (
            isinstance(_obj, type)
            and dataclasses.is_dataclass(_obj)
            and _obj.__module__ == _mod.__name__
        ):
            _CLASSES[_name] = _obj


class SchemaError(ValueError):
    """The JSON is not an IR this version can read."""


def to_json(program: ir.Program) -> dict[str, Any]:
    out = _dump(program)
    assert isinstance(out, dict)
    return out


def _dump(v: Any) -> Any:
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        d: dict[str, Any] = {"$t": type(v).__name__}
        for f in dataclasses.fields(v):
            d[f.name] = _dump(getattr(v, f.name))
        return d
    if isinstance(v, tuple | list):
        return [_dump(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _dump(x) for k, x in v.items()}
    return v


def from_json(data: dict[str, Any]) -> ir.Program:
    if not isinstance(data, dict) or data.get("$t") != "Program":
        raise SchemaError("not an IR program")
    if data.get("ir_version") != ir.IR_VERSION:
        got = data.get("ir_version")
        raise SchemaError(f"IR version {got!r}; this build reads {ir.IR_VERSION}")
    prog = _load(data, ir.Program)
    assert isinstance(prog, ir.Program)
    return prog


@cache
def _hints(cls: type) -> dict[str, Any]:
    ns = {**vars(ir), **vars(expr_ast)}
    return typing.get_type_hints(cls, globalns=ns, localns=ns)


def _load(v: Any, ann: Any) -> Any:
    if isinstance(v, dict) and "$t" in v:
        cls = _CLASSES.get(v["$t"])
        if cls is None:
            raise SchemaError(f"unknown IR type {v['$t']!r}")
        hints = _hints(cls)
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name in v:
                kwargs[f.name] = _load(v[f.name], hints[f.name])
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise SchemaError(str(exc)) from None
    origin = typing.get_origin(ann)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        if v is None:
            return None
        if len(args) == 1:
            return _load(v, args[0])
        return _load(v, Any)
    if origin is tuple and isinstance(v, list):
        targs = typing.get_args(ann)
        item = targs[0] if targs else Any
        return tuple(_load(x, item) for x in v)
    if origin is dict and isinstance(v, dict):
        _, val = typing.get_args(ann)
        return {k: _load(x, val) for k, x in v.items()}
    if isinstance(v, list):
        return list(_load(x, Any) for x in v)
    if isinstance(v, dict):
        return {k: _load(x, Any) for k, x in v.items()}
    return v


def without_positions(program: ir.Program) -> ir.Program:
    """The program with every `line` set to 0: compares IRs from different layouts/syntaxes."""
    data = to_json(program)

    def scrub(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: (0 if k in ("line", "then_line") else scrub(x)) for k, x in v.items()}
        if isinstance(v, list):
            return [scrub(x) for x in v]
        return v

    out = _load(scrub(data), ir.Program)
    assert isinstance(out, ir.Program)
    return out

"""ABL front end: compiles agent source (ABL or its YAML variant) to a frozen, versioned IR.

Pure Python, no I/O. `compile_source` never raises on bad input; it returns diagnostics.
"""

from chatplane.lang import expr_ast, ir
from chatplane.lang.builtins import Env, EvalError
from chatplane.lang.compiler import CompileResult, compile_source
from chatplane.lang.evaluate import evaluate, render
from chatplane.lang.ir import IR_VERSION, Program
from chatplane.lang.serialize import SchemaError, from_json, to_json, without_positions
from chatplane.lang.source import CODES, Diagnostic, Severity

__all__ = [
    "CODES",
    "IR_VERSION",
    "CompileResult",
    "Diagnostic",
    "Env",
    "EvalError",
    "Program",
    "SchemaError",
    "Severity",
    "compile_source",
    "evaluate",
    "expr_ast",
    "from_json",
    "ir",
    "render",
    "to_json",
    "without_positions",
]

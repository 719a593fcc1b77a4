"""CEL evaluation behind one small interface, with two runtimes.

`cel-expr-python` (Google's C++ runtime) is used where it has wheels; elsewhere the
pure-Python `cel-python` takes over. Both see the same variables (`object`, `facts`,
`mesh`) and the same extra functions: `list.join(separator)`, and `plural(n, word)`
for counts in messages ("1 workload", "3 workloads", "2 policies"). MESH_AUDIT_CEL
selects one explicitly (`cel-expr-python` or `cel-python`).
"""

from __future__ import annotations

import os
from typing import Any

from auditor.core.words import plural

VARIABLES = ("object", "facts", "mesh")
BACKEND_NAMES = ("cel-expr-python", "cel-python")


class CelError(Exception):
    """A CEL expression that does not compile, or that failed on one object."""


class CelExprBackend:
    name = "cel-expr-python"

    def __init__(self) -> None:
        from cel_expr_python import cel
        from cel_expr_python.ext import ext_strings

        self._cel = cel
        plural_decl = cel.FunctionDecl("plural", [
            cel.Overload("plural_int_string", cel.Type.STRING, [cel.Type.INT, cel.Type.STRING], impl=plural)])
        self._env = cel.NewEnv(
            variables={v: cel.Type.DYN for v in VARIABLES},
            extensions=[ext_strings.ExtStrings()],
            functions=[plural_decl],
        )

    def compile(self, expression: str):
        try:
            return self._env.compile(expression)
        except RuntimeError as err:
            raise CelError(_first_line(str(err).removeprefix("INVALID_ARGUMENT: ").removeprefix("ERROR: "))) from None

    def activation(self, data: dict):
        return self._env.Activation(data)

    def evaluate(self, program, activation) -> Any:
        try:
            value = program.eval(activation)
        except RuntimeError as err:
            raise CelError(_first_line(str(err))) from None
        if value.type() == self._cel.Type.ERROR:
            raise CelError(_first_line(str(value.value())))
        return value.plain_value()


class CelPyBackend:
    name = "cel-python"

    def __init__(self) -> None:
        import logging

        import celpy
        from celpy import celtypes

        # cel-python logs every evaluation error at ERROR level; errors are reported by us.
        logging.getLogger("celpy").setLevel(logging.CRITICAL)
        logging.getLogger("Evaluator").setLevel(logging.CRITICAL)
        self._celpy = celpy
        self._types = celtypes
        self._env = celpy.Environment()

        def join(items, separator=celtypes.StringType("")):
            return celtypes.StringType(str(separator).join(str(i) for i in items))

        def counted(count, word):
            return celtypes.StringType(plural(int(count), str(word)))

        self._functions = {"join": join, "plural": counted}

    def compile(self, expression: str):
        try:
            ast = self._env.compile(expression)
            return self._env.program(ast, functions=self._functions)
        except Exception as err:  # cel-python raises its own parse error classes
            raise CelError(_first_line(str(err)) or "syntax error") from None

    def activation(self, data: dict):
        return {k: self._celpy.json_to_cel(v) for k, v in data.items()}

    def evaluate(self, program, activation) -> Any:
        try:
            value = program.evaluate(activation)
        except Exception as err:
            raise CelError(_first_line(str(err.args[0] if err.args else err))) from None
        if isinstance(value, self._celpy.evaluation.CELEvalError):
            raise CelError(_first_line(str(value.args[0] if value.args else value)))
        return self._plain(value)

    def _plain(self, value):
        t = self._types
        if isinstance(value, t.BoolType):
            return bool(value)
        if isinstance(value, (t.IntType, t.UintType)):
            return int(value)
        if isinstance(value, t.DoubleType):
            return float(value)
        if isinstance(value, t.StringType):
            return str(value)
        if isinstance(value, t.ListType):
            return [self._plain(v) for v in value]
        if isinstance(value, t.MapType):
            return {self._plain(k): self._plain(v) for k, v in value.items()}
        return value


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0].strip() if text.strip() else text


_BACKENDS = {"cel-expr-python": CelExprBackend, "cel-python": CelPyBackend}
_cache: dict[str, Any] = {}


def get_backend(name: str | None = None):
    """The named backend, else MESH_AUDIT_CEL, else the first one that imports."""
    name = name or os.environ.get("MESH_AUDIT_CEL") or None
    if name is not None and name not in _BACKENDS:
        raise CelError(f"unknown CEL backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")
    for candidate in [name] if name else list(BACKEND_NAMES):
        if candidate in _cache:
            return _cache[candidate]
        try:
            backend = _BACKENDS[candidate]()
        except ImportError:
            if name:
                raise CelError(f"CEL backend {name} is not installed") from None
            continue
        _cache[candidate] = backend
        return backend
    raise CelError("no CEL runtime is installed: install cel-expr-python or cel-python")

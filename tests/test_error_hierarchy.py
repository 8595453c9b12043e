"""One exception hierarchy: every error class either package defines derives from
``SandboxError`` (so ``except SandboxError`` catches every refusal of the library, the
generator's included), except warnings and internal signals that never leave their module.
AST only: nothing is imported to check."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

INTERNAL = {
    "_RollBack": "private to records/importing.py: undoes a dry run, never escapes",
    "NotCompilable": "views/sql_compile.py's signal to fall back to the reference evaluator",
}
"""Exception classes that are control flow inside one module, with why."""

BUILTIN_ERRORS = {"Exception", "ValueError", "TypeError", "KeyError", "LookupError",
                  "RuntimeError", "PermissionError", "OSError", "ArithmeticError"}  # fmt: skip


def _classes() -> dict[str, tuple[str, list[str]]]:
    out = {}
    for package in ("ehr_sandbox", "synthetic"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef):
                    bases = [ast.unparse(b).rsplit(".", 1)[-1] for b in node.bases]
                    out[node.name] = (str(path.relative_to(ROOT)), bases)
    return out


def derives(name: str, root: str, classes: dict[str, tuple[str, list[str]]]) -> bool:
    """True when class ``name`` has ``root`` among its ancestors (by name, through ``classes``)."""
    seen, todo = set(), [name]
    while todo:
        cur = todo.pop()
        if cur == root:
            return True
        if cur in seen or cur not in classes:
            continue
        seen.add(cur)
        todo.extend(classes[cur][1])
    return False


def test_derives_follows_bases() -> None:
    toy = {"A": ("a.py", ["ValueError"]), "B": ("b.py", ["A"]), "C": ("c.py", ["Warning"])}
    assert derives("B", "ValueError", toy) and not derives("C", "ValueError", toy)


def test_every_error_class_is_a_sandbox_error() -> None:
    classes = _classes()
    errors = {
        n
        for n in classes
        if any(derives(n, b, classes) for b in BUILTIN_ERRORS) and n not in BUILTIN_ERRORS
    }
    assert {"ValidationError", "GenerationError", "ContentError", "EvaluationError"} <= errors
    outside = sorted(
        f"{classes[n][0]}: {n}"
        for n in errors
        if not derives(n, "SandboxError", classes)
        and not derives(n, "Warning", classes)
        and n not in INTERNAL
        and n != "SandboxError"
    )
    assert not outside, outside

"""One FHIR vocabulary: every code system, identifier system, extension and profile URL is
spelled out once, in ``synthetic/systems.py``; every other module of both packages imports it
by name. Docstrings (examples and prose) may quote a URL; code may not. Loopback and
``example.org`` addresses (server defaults, placeholders) are not vocabulary."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from synthetic import systems

ROOT = Path(__file__).resolve().parents[1]
VOCABULARY = ROOT / "synthetic" / "systems.py"
URI = re.compile(r"^(https?://[^\s|{}\"'<>]+)(\|.*)?$")
NOT_VOCABULARY = re.compile(
    r"^https?://(127\.0\.0\.1|localhost|example\.(org|com)|testserver|[^/]*\.example)([:/]|$)"
)


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (module, class, function, attribute)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(body, list) or not body:
            continue
        first = body[0]
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
        ):
            out.add(id(first.value))
        for prev, cur in zip(body, body[1:], strict=False):
            if (
                isinstance(prev, (ast.Assign, ast.AnnAssign))
                and isinstance(cur, ast.Expr)
                and isinstance(cur.value, ast.Constant)
            ):
                out.add(id(cur.value))
    return out


def uri_literals(source: str) -> Iterator[tuple[int, str]]:
    """(line, URI) of every URL spelled out in code (not in a docstring) of ``source``."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            m = URI.match(node.value)
            if m and not NOT_VOCABULARY.match(m.group(1)):
                yield node.lineno, m.group(1)


def test_the_scan_sees_a_spelled_out_system() -> None:
    code = '"""Doc: http://loinc.org is fine here."""\nX = {"system": "http://loinc.org"}\n'
    assert list(uri_literals(code)) == [(2, "http://loinc.org")]
    assert list(uri_literals('f"http://loinc.org|{code}"')) == [(1, "http://loinc.org")]
    assert list(uri_literals('URL = "http://127.0.0.1:8080"')) == []


def test_no_module_spells_out_a_system_uri() -> None:
    found = []
    for package in ("ehr_sandbox", "synthetic"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == VOCABULARY:
                continue
            for line, uri in uri_literals(path.read_text(encoding="utf-8")):
                found.append(f"{path.relative_to(ROOT)}:{line}: {uri}")
    assert not found, (
        "URLs spelled out outside synthetic/systems.py (name them there and import the name):\n"
        + "\n".join(found)
    )


def test_the_vocabulary_names_each_uri_once() -> None:
    names = {n: v for n, v in vars(systems).items() if n.isupper() and isinstance(v, str)}
    assert len(names) > 100
    by_value: dict[str, list[str]] = {}
    for name, value in names.items():
        assert URI.match(value), (name, value)
        by_value.setdefault(value, []).append(name)
    assert not {v: n for v, n in by_value.items() if len(n) > 1}

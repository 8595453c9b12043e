"""Parse the FHIRPath subset used by SQL on FHIR views into a small tuple-based syntax tree.

The tree is compiled once into closures (see :mod:`ehr_sandbox.views.fhirpath_compile`), so
parsing never happens per row. Node shapes (first item is the kind):

- ``("lit", value, type)``                literal (type: string, integer, decimal, boolean, date,
  dateTime, time, quantity, empty)
- ``("member", name)``                    navigation to a child element
- ``("call", name, [args])``              function invocation (args are nodes)
- ``("this",)`` / ``("index_var",)``      ``$this`` / ``$index``
- ``("const", name)``                     ``%name``
- ``("dot", left, right)``                ``left.right`` (right is member or call)
- ``("index", left, index_node)``         ``left[index]``
- ``("op", symbol, left, right)``         binary operator
- ``("neg", operand)``                    unary minus
- ``("type_op", "is"|"as", left, type)``  type test / cast

>>> parse("name.where(use = 'official').family")[0]
'dot'
>>> parse("1 + 2 * 3")
('op', '+', ('lit', 1, 'integer'), ('op', '*', ('lit', 2, 'integer'), ('lit', 3, 'integer')))
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from ehr_sandbox.errors import ViewDefinitionError

__all__ = ["FhirPathSyntaxError", "Node", "parse"]

Node = tuple[Any, ...]


class FhirPathSyntaxError(ViewDefinitionError):
    """The expression is not valid FHIRPath (the message says where and what was expected).

    >>> try:
    ...     parse("@@")
    ... except FhirPathSyntaxError as exc:
    ...     print(exc)
    unexpected character '@' at offset 0
    """


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<datetime>@\d{4}(?:-\d{2}(?:-\d{2})?)?T(?:\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?)?(?:Z|[+-]\d{2}:\d{2})?)
  | (?P<date>@\d{4}(?:-\d{2}(?:-\d{2})?)?)
  | (?P<time>@T\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<quoted>`(?:[^`\\]|\\.)*`)
  | (?P<const>%(?:[A-Za-z_][A-Za-z0-9_]*|`(?:[^`\\]|\\.)*`|'(?:[^'\\]|\\.)*'))
  | (?P<var>\$(?:this|index|total))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|!=|!~|[-+*/&|=~<>(),.\[\]{}])
    """,
    re.VERBOSE | re.DOTALL,
)

_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "f": "\f",
    "'": "'",
    '"': '"',
    "`": "`",
    "\\": "\\",
    "/": "/",
}

# Binding power of binary operators (FHIRPath precedence, low to high).
_BINARY: dict[str, int] = {
    "implies": 1,
    "or": 2,
    "xor": 2,
    "and": 3,
    "in": 4,
    "contains": 4,
    "=": 5,
    "~": 5,
    "!=": 5,
    "!~": 5,
    "<=": 6,
    "<": 6,
    ">": 6,
    ">=": 6,
    "|": 7,
    "is": 8,
    "as": 8,
    "+": 9,
    "-": 9,
    "&": 9,
    "*": 10,
    "/": 10,
    "div": 10,
    "mod": 10,
}
_UNARY_POWER = 11
_CALENDAR_UNITS = {
    "year",
    "years",
    "month",
    "months",
    "week",
    "weeks",
    "day",
    "days",
    "hour",
    "hours",
    "minute",
    "minutes",
    "second",
    "seconds",
    "millisecond",
    "milliseconds",
}


def _unescape(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt == "u" and i + 5 < len(body):
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise FhirPathSyntaxError(f"unexpected character {text[pos]!r} at offset {pos}")
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append((kind, m.group(), pos))
        pos = m.end()
    tokens.append(("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i]

    def take(self) -> tuple[str, str, int]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, value: str) -> None:
        kind, val, pos = self.take()
        if val != value or kind not in ("op", "ident"):
            found = val or "end of expression"
            raise FhirPathSyntaxError(f"expected {value!r} at offset {pos}, found {found!r}")

    def expression(self, min_power: int = 0) -> Node:
        left = self.prefix()
        while True:
            kind, val, _ = self.peek()
            if kind not in ("op", "ident") or val not in _BINARY:
                break
            power = _BINARY[val]
            if power <= min_power:
                break
            self.take()
            if val in ("is", "as"):
                left = ("type_op", val, left, self.type_name())
                continue
            right = self.expression(power)
            left = ("op", val, left, right)
        return left

    def type_name(self) -> str:
        kind, val, pos = self.take()
        if kind not in ("ident", "quoted"):
            raise FhirPathSyntaxError(f"expected a type name at offset {pos}, found {val!r}")
        name = val.strip("`")
        while self.peek()[1] == ".":
            self.take()
            name += "." + self.take()[1].strip("`")
        return name

    def prefix(self) -> Node:
        kind, val, pos = self.peek()
        if kind == "op" and val in ("-", "+"):
            self.take()
            operand = self.expression(_UNARY_POWER)
            return ("neg", operand) if val == "-" else operand
        return self.postfix(self.term())

    def postfix(self, node: Node) -> Node:
        while True:
            kind, val, _ = self.peek()
            if kind == "op" and val == ".":
                self.take()
                node = ("dot", node, self.invocation())
            elif kind == "op" and val == "[":
                self.take()
                index = self.expression()
                self.expect("]")
                node = ("index", node, index)
            else:
                return node

    def invocation(self) -> Node:
        kind, val, pos = self.take()
        if kind == "var":
            return ("this",) if val == "$this" else ("index_var",)
        if kind not in ("ident", "quoted"):
            raise FhirPathSyntaxError(f"expected a name or function at offset {pos}, found {val!r}")
        name = _unescape(val[1:-1]) if kind == "quoted" else val
        if self.peek()[1] == "(" and kind == "ident":
            self.take()
            args: list[Node] = []
            if self.peek()[1] != ")":
                args.append(self.expression())
                while self.peek()[1] == ",":
                    self.take()
                    args.append(self.expression())
            self.expect(")")
            return ("call", name, args)
        return ("member", name)

    def term(self) -> Node:
        kind, val, pos = self.peek()
        if kind == "number":
            self.take()
            number: Any = Decimal(val) if "." in val else int(val)
            unit_kind, unit_val, _ = self.peek()
            if unit_kind == "string" or (unit_kind == "ident" and unit_val in _CALENDAR_UNITS):
                self.take()
                unit = _unescape(unit_val[1:-1]) if unit_kind == "string" else unit_val
                return ("lit", (number, unit), "quantity")
            if isinstance(number, Decimal):
                return ("lit", number, "decimal")
            return ("lit", number, "integer")
        if kind == "string":
            self.take()
            return ("lit", _unescape(val[1:-1]), "string")
        if kind == "date":
            self.take()
            return ("lit", val[1:], "date")
        if kind == "datetime":
            self.take()
            return ("lit", val[1:].rstrip("T"), "dateTime")
        if kind == "time":
            self.take()
            return ("lit", val[2:], "time")
        if kind == "const":
            self.take()
            name = val[1:]
            if name[:1] in ("`", "'"):
                name = _unescape(name[1:-1])
            return ("const", name)
        if kind == "var":
            self.take()
            return ("this",) if val == "$this" else ("index_var",)
        if kind == "ident" and val in ("true", "false"):
            self.take()
            return ("lit", val == "true", "boolean")
        if kind in ("ident", "quoted"):
            return self.invocation()
        if kind == "op" and val == "(":
            self.take()
            inner = self.expression()
            self.expect(")")
            return inner
        if kind == "op" and val == "{":
            self.take()
            self.expect("}")
            return ("lit", None, "empty")
        found = val or "end of expression"
        raise FhirPathSyntaxError(f"expected a term at offset {pos}, found {found!r}")


def parse(text: str) -> Node:
    """Parse a FHIRPath expression into a syntax tree (raises :class:`FhirPathSyntaxError`).

    >>> parse("%rowIndex")
    ('const', 'rowIndex')
    >>> parse("value.ofType(Quantity)")
    ('dot', ('member', 'value'), ('call', 'ofType', [('member', 'Quantity')]))
    """
    if not isinstance(text, str) or not text.strip():
        raise FhirPathSyntaxError("expected a non-empty FHIRPath expression")
    parser = _Parser(text)
    node = parser.expression()
    kind, val, pos = parser.peek()
    if kind != "end":
        raise FhirPathSyntaxError(f"unexpected {val!r} at offset {pos}")
    return node

"""Source text -> syntax tree, with every Lark error turned into a positioned KspecSyntaxError."""
from __future__ import annotations

import functools
import re
from pathlib import Path

import lark
from lark import Lark, Token, Transformer, v_args

from ..errors import KspecSyntaxError, SourcePos
from . import ast

_GRAMMAR = Path(__file__).with_name("grammar.lark")

# How the parser's terminal names read in "expected ..." messages.
_TERMINAL_TEXT = {
    "NAME": "a name", "NUMBER": "a number", "_NL": "end of line", "$END": "end of file",
    "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "LBRACE": "'{'", "RBRACE": "'}'",
    "COMMA": "','", "COLON": "':'", "SEMICOLON": "';'", "EQUAL": "'='", "ARROW": "'->'",
    "CMP": "a comparison", "LT": "'<'", "PLUS": "'+'", "MINUS": "'-'", "STAR": "'*'",
    "SLASH": "'/'", "DSLASH": "'//'", "PERCENT": "'%'", "POW": "'**'",
    "KERNEL": "'kernel'", "FOR": "'for'", "AND": "'and'", "OR": "'or'", "NOT": "'not'",
}
_OPERATORS = {"CMP", "LT", "PLUS", "MINUS", "STAR", "SLASH", "DSLASH", "PERCENT", "POW",
              "AND", "OR"}
_EXPRESSION_START = {"NAME", "NUMBER", "LPAR", "MINUS", "PLUS", "NOT"}
_CLOSERS = {"(": ")", "[": "]", "{": "}"}
_HINTS = {"&": "; write 'and'", "|": "; write 'or'", "!": "; write 'not' (or != to compare)",
          "'": "; kspec has no strings", '"': "; kspec has no strings",
          ".": "; '.' is only part of numbers, as in 0.5",
          "\\": "; a backslash continues a line only as the line's last character"}

# Deeper expressions are rejected: the checks, the printer and the backends walk them
# recursively, and no real kernel nests operators this deep.
MAX_DEPTH = 100


class _NewlineFilter:
    """Newlines end statements only directly inside `{ }`; inside ( ) or [ ], and between kernels,
    they are layout. Lark calls this between the lexer and the LALR parser."""

    always_accept = ("_NL",)

    def process(self, stream):
        stack: list[str] = []
        for tok in stream:
            if tok.type in ("LPAR", "LSQB", "LBRACE"):
                stack.append(tok.type)
            elif tok.type in ("RPAR", "RSQB", "RBRACE") and stack:
                stack.pop()
            elif tok.type == "_NL" and (not stack or stack[-1] != "LBRACE"):
                continue
            yield tok


@functools.lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(_GRAMMAR.read_text(), parser="lalr", lexer="contextual",
                postlex=_NewlineFilter(), propagate_positions=True, maybe_placeholders=True)


def grammar_text() -> str:
    return _GRAMMAR.read_text()


_I64_MAX = 2 ** 63 - 1
_NUMBER_OK = re.compile(r"(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\Z")


def _number_fault(text: str) -> str:
    rest = text[re.match(r"\d+\.?\d*|\.\d+", text).end():]
    if rest[:1] in ("e", "E") and not re.match(r"[eE][+-]?\d", rest):
        return "expected digits after the exponent's 'e', as in 1e-5"
    if rest.startswith(".") or re.match(r"[eE][+-]?\d+\.", rest):
        return "a number has at most one '.', before any exponent"
    m = re.match(r"[eE][+-]?\d+", rest)
    bad = rest[m.end() if m else 0]
    return f"expected an operator between a number and '{bad}', as in 3 * x"


class _ToAst(Transformer):
    def __init__(self, file: str, source: str):
        super().__init__()
        self.file, self.source = file, source

    def _pos(self, item) -> SourcePos:
        return SourcePos(self.file, item.line, item.column, self.source)

    def start(self, kernels):
        return ast.File(list(kernels), self.file, self.source)

    @v_args(meta=True)
    def kernel(self, meta, items):
        name, *rest = items
        params = [p for p in rest[:-3] if p is not None]
        _arrow, outputs, body = rest[-3:]
        return ast.KernelDef(str(name), params, outputs, body, self._pos(name))

    def param(self, items):
        name, typ, default = items
        return ast.Param(str(name), typ, default, self._pos(name))

    def output(self, items):
        name, typ = items
        return ast.Param(str(name), typ, None, self._pos(name))

    def outputs(self, items):
        return [o for o in items if o is not None]

    def type(self, items):
        name, lsqb, *dims = items
        if lsqb is None:
            return ast.TypeRef(str(name), None, self._pos(name))
        return ast.TypeRef(str(name), [d for d in dims if d is not None], self._pos(name))

    def body(self, items):
        return list(items)

    def stmt(self, items):
        name, lsqb, *rest = items
        value = rest[-1]
        indices = None if lsqb is None else [d for d in rest[:-1] if d is not None]
        return ast.Stmt(str(name), indices, value, self._pos(name))

    def number(self, items):
        (tok,) = items
        text = str(tok)
        if not _NUMBER_OK.match(text):
            raise KspecSyntaxError(f"malformed number '{text}'; {_number_fault(text)}",
                                   self._pos(tok))
        is_float = any(c in text for c in ".eE")
        if is_float:
            return ast.Num(text, float(text), self._pos(tok))
        digits = text.lstrip("0") or "0"   # int() refuses more than 4300 digits
        if len(digits) > 19 or int(digits) > _I64_MAX:
            raise KspecSyntaxError(f"integer {text[:25]}{'...' if len(text) > 25 else ''} is "
                                   f"too large; integers are at most {_I64_MAX} (2**63 - 1)",
                                   self._pos(tok))
        return ast.Num(text, int(digits), self._pos(tok))

    def name(self, items):
        (tok,) = items
        return ast.Name(str(tok), self._pos(tok))

    def index(self, items):
        name, _lsqb, *args = items
        return ast.Index(str(name), [a for a in args if a is not None], self._pos(name))

    def padded(self, items):
        name, *rest = items
        cut = next(n for n, t in enumerate(rest) if isinstance(t, Token) and t.type == "LSQB")
        call = ast.Call(str(name), [a for a in rest[:cut] if a is not None], self._pos(name))
        return ast.Padded(call, [a for a in rest[cut + 1:] if a is not None], self._pos(name))

    def padded_stmt(self, items):
        target = items[1].id if isinstance(items[1], ast.Name) else "y"
        raise KspecSyntaxError(f"a write cannot take a pad value; write {target}[...] = ... "
                               f"(pad(x, v)[...] is a read of x that gives v outside it)",
                               self._pos(items[0]))

    def call(self, items):
        name, *args = items
        return ast.Call(str(name), [a for a in args if a is not None], self._pos(name))

    def generator(self, items):
        name, body, *vars_ = items
        return ast.Generator(str(name), body, list(vars_), self._pos(name))

    def redvar(self, items):
        name, _lt, bound = items
        return ast.RedVar(str(name), bound, self._pos(name))

    def scanvar(self, items):
        name, relation, bound = items
        return ast.RedVar(str(name), bound, self._pos(name), str(relation))

    def binop(self, items):
        a, op, b = items
        return ast.BinOp(str(op), a, b, self._pos(op))

    compare = binop

    @v_args(meta=True)
    def or_(self, meta, items):
        return ast.BinOp("or", items[0], items[1], self._pos(meta))

    @v_args(meta=True)
    def and_(self, meta, items):
        return ast.BinOp("and", items[0], items[1], self._pos(meta))

    @v_args(meta=True)
    def not_(self, meta, items):
        return ast.UnOp("not", items[0], self._pos(meta))

    def neg(self, items):
        op, a = items
        return ast.UnOp("-", a, self._pos(op))

    def pos(self, items):
        op, a = items
        return ast.UnOp("+", a, self._pos(op))


_BAD_CHARACTER = re.compile(r"[^\t\n\r\f -~]")


def _check_characters(source: str, display: str, file: str) -> None:
    m = _BAD_CHARACTER.search(source)
    if m is None:
        return
    offset, ch = m.start(), m.group()
    line = source.count("\n", 0, offset) + 1
    col = offset - (source.rfind("\n", 0, offset) + 1) + 1
    what = "NUL character" if ch == "\0" else (
        "control character" if ord(ch) < 128 else "non-ASCII character")
    shown = "" if ord(ch) < 32 or ord(ch) == 127 or not ch.isprintable() else f" '{ch}'"
    raise KspecSyntaxError(f"{what}{shown} (U+{ord(ch):04X}); kspec source is ASCII",
                           SourcePos(file, line, col, display))


def _display(source: str) -> str:
    """The source as error excerpts show it: one line per '\n' (as Lark counts lines), with line
    breaks of other kinds (\r, \f, U+2028 ...) and unprintable characters shown as one
    character each, so that the caret stays under the fault."""
    if not _BAD_CHARACTER.search(source) and "\r" not in source and "\f" not in source:
        return source
    lines = []
    for line in source.split("\n"):
        line = line[:-1] if line.endswith("\r") else line
        lines.append("".join(c if c == "\t" or c.isprintable() else " " if c in "\r\f\v"
                             else "?" for c in line))
    return "\n".join(lines)


def _describe(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    if tok.type == "_NL":
        return "end of line"
    if tok.type == "NAME":
        return f"name '{tok}'"
    if tok.type == "NUMBER":
        return f"number '{tok}'"
    return f"'{tok}'"


def _expected(names) -> str:
    names = set(names)
    if _EXPRESSION_START - {"NOT"} <= names:
        names = (names - _EXPRESSION_START) | {"an expression"}
    if names & _OPERATORS and len(names) > 4:
        names = (names - _OPERATORS) | {"an operator"}
    texts = sorted({_TERMINAL_TEXT.get(n, n if n.startswith("an ") else f"'{n.lower()}'")
                    for n in names})
    if len(texts) > 6:
        return "an expression or statement"
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " or " + texts[-1]


def _open_brackets(source: str, upto: int) -> list[tuple[str, int]]:
    """The brackets still open at offset `upto` (comments skipped): (bracket, offset) pairs."""
    stack: list[tuple[str, int]] = []
    for m in re.finditer(r"#[^\n]*|[()\[\]{}]", source[:upto]):
        ch = m.group()
        if ch in _CLOSERS:
            stack.append((ch, m.start()))
        elif ch in ")]}" and stack and _CLOSERS[stack[-1][0]] == ch:
            stack.pop()
    return stack


def _bracket_hint(tok: Token, source: str, offset: int, expected: set[str]) -> str | None:
    """At the end of the file or at a closing bracket of the wrong kind, name the bracket that is
    still open; at a closing bracket with nothing to close, say so."""
    stack = _open_brackets(source, offset)
    if tok.type in ("RPAR", "RSQB", "RBRACE") and not any(
            _CLOSERS[ch] == str(tok) for ch, _ in stack):
        opener = {")": "(", "]": "[", "}": "{"}[str(tok)]
        return f"unexpected '{tok}': there is no open '{opener}' to close"
    if not stack or tok.type not in ("$END", "RPAR", "RSQB", "RBRACE"):
        return None
    ch, at = stack[-1]
    closer = {"(": "RPAR", "[": "RSQB", "{": "RBRACE"}[ch]
    if closer not in expected or str(tok) == _CLOSERS[ch]:
        return None
    line = source.count("\n", 0, at) + 1
    col = at - (source.rfind("\n", 0, at) + 1) + 1
    what = "the kernel body" if ch == "{" else f"'{ch}'"
    return (f"unexpected {_describe(tok)}; expected '{_CLOSERS[ch]}' to close {what} opened "
            f"at {line}:{col}")


def _unexpected_token(e: lark.UnexpectedToken, source: str, display: str, file: str):
    tok = e.token
    expected = set(e.accepts or e.expected)
    if tok.type == "$END" or tok.line is None:
        line, col = _end_pos(display)
        offset = len(source)
    else:
        line, col, offset = tok.line, tok.column, tok.start_pos
        # a line end "\r\n" is lexed as an ignored "\r" and a newline the excerpt does not show
        col = min(col, len(display.split("\n")[line - 1]) + 1)
    message = _bracket_hint(tok, source, offset, expected)
    if message is None and tok.type in ("CMP", "LT") and not expected & {"CMP", "LT"} \
            and "PLUS" in expected:
        message = (f"unexpected {_describe(tok)}; comparisons do not chain: write "
                   f"a < b and b < c")
    if message is None:
        message = f"unexpected {_describe(tok)}; expected {_expected(expected)}"
        if (tok.type in _OPERATORS and tok.line is not None and tok.line > 1
                and not display.split("\n")[tok.line - 1][:tok.column - 1].strip()):
            message += ("; a statement continues on the next line only inside ( ) or [ ], "
                        "or after a backslash")
    return KspecSyntaxError(message, SourcePos(file, line, col, display))


_STRUCTURE = {"start", "kernel", "param", "outputs", "output", "type", "body", "stmt"}


def _check_depth(tree: lark.Tree, file: str, display: str) -> None:
    """Reject expressions nested more than MAX_DEPTH levels, at the start of the expression."""
    stack: list[tuple[lark.Tree, int, lark.Tree | None]] = [(tree, 0, None)]
    while stack:
        node, depth, root = stack.pop()
        if node.data not in _STRUCTURE:
            root = root or node
            depth += node.data not in ("name", "number")
        if depth > MAX_DEPTH:
            pos = SourcePos(file, root.meta.line, root.meta.column, display)
            raise KspecSyntaxError(f"expression nested too deeply (more than {MAX_DEPTH} levels "
                                   f"of operators and calls); split it into several statements",
                                   pos)
        stack.extend((c, depth, root) for c in node.children if isinstance(c, lark.Tree))


def parse(source: str, file: str = "<string>") -> ast.File:
    """Parse kspec source. Raises KspecSyntaxError with file:line:col on any malformed input."""
    display = _display(source)
    _check_characters(source, display, file)
    try:
        tree = _parser().parse(source)
    except lark.UnexpectedToken as e:
        raise _unexpected_token(e, source, display, file) from None
    except lark.UnexpectedCharacters as e:
        ch = source[e.pos_in_stream] if e.pos_in_stream < len(source) else ""
        allowed = set(e.allowed or ()) - {"_NL"}   # newlines are always accepted
        hint = (f"; expected {_expected(allowed)}" if allowed and len(allowed) <= 3 else
                "; kspec does not use this character")
        raise KspecSyntaxError(f"unexpected character '{ch}'{_HINTS.get(ch, hint)}",
                               SourcePos(file, e.line, e.column, display)) from None
    except lark.UnexpectedEOF as e:
        line, col = _end_pos(display)
        raise KspecSyntaxError(f"unexpected end of file; expected {_expected(e.expected)}",
                               SourcePos(file, line, col, display)) from None
    _check_depth(tree, file, display)
    try:
        return _ToAst(file, display).transform(tree)
    except lark.exceptions.VisitError as e:
        if isinstance(e.orig_exc, KspecSyntaxError):
            raise e.orig_exc from None
        raise


def _end_pos(source: str) -> tuple[int, int]:
    lines = source.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        return len(lines) - 1, len(lines[-2]) + 1
    return len(lines), len(lines[-1]) + 1

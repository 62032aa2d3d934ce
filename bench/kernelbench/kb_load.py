"""KernelBench problems and their kspec translations: finding them, shrinking a problem's
sizes (--small), executing its file, and reading a translation's header directives.

A problem is `KernelBench/level<L>/<stem>.py` in a checkout; its translation is
`<translations>/level<L>/<stem>.kspec`; a problem the language cannot express yet is a row
`| level<L>/<stem> | missing construct |` of `<translations>/UNSUPPORTED.md`.
"""
from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kspec.errors import KspecError


# --small: the sizes a shrunk constant may take, and the names whose values are kept
SMALL_FLOORS = (8, 16, 32, 64)  # a shrunk size is at least the floor; a problem that fails
                                # at one (a kernel wider than the input, channels fewer than
                                # their groups) tries the next
KEEP_AT_MOST = 8                # values up to this are structural (dims, kernel sizes, groups)
BATCH_SMALL = 2
STRUCTURAL = re.compile(r"kernel|stride|pad|dilation|pool_size", re.I)
DIRECTIVE = re.compile(r"#\s*(kernelbench|bind|result|small)\s*:\s*(.*)$")


class KernelBenchError(KspecError):
    """A problem file, a translation's header or a binding that the runner cannot use."""

    kind = "kernelbench error"


@dataclass(frozen=True)
class Problem:
    level: int
    stem: str                  # the file stem, e.g. 19_ReLU
    path: Path                 # the problem's .py in the checkout

    @property
    def key(self) -> str:
        return f"level{self.level}/{self.stem}"

    @property
    def number(self) -> int:
        return int(self.stem.split("_", 1)[0])


@dataclass
class Header:
    """The `# name: value` directives at the top of a translation."""

    kernelbench: str
    binds: dict[str, str] = field(default_factory=dict)
    result: str | None = None
    small: dict[str, int] = field(default_factory=dict)


def find_problems(checkout: Path, levels: list[int]) -> list[Problem]:
    """Every problem of the levels, in KernelBench's order (by number)."""
    problems = []
    for level in levels:
        folder = checkout / "KernelBench" / f"level{level}"
        if not folder.is_dir():
            raise KernelBenchError(f"{folder} is not a folder: --kernelbench takes the checkout "
                                   "that contains KernelBench/level1/...")
        found = [Problem(level, p.stem, p) for p in folder.glob("*.py")
                 if re.match(r"\d+_", p.stem)]
        problems += sorted(found, key=lambda p: p.number)
    return problems


def select(problems: list[Problem], only: list[str] | None) -> list[Problem]:
    """The problems named in `only` (stems, or level<L>/<stem>); all when None."""
    if not only:
        return problems
    by_name = {p.stem: p for p in problems} | {p.key: p for p in problems}
    unknown = [n for n in only if n not in by_name]
    if unknown:
        raise KernelBenchError("--only names no problem of the chosen levels: "
                               + ", ".join(unknown))
    return [by_name[n] for n in dict.fromkeys(only)]


def translation_path(translations: Path, problem: Problem) -> Path:
    return translations / f"level{problem.level}" / f"{problem.stem}.kspec"


def unsupported(translations: Path) -> dict[str, str]:
    """level<L>/<stem> -> the missing construct, from the table rows of UNSUPPORTED.md."""
    path = translations / "UNSUPPORTED.md"
    rows: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if line.startswith("|") and len(cells) >= 2 and re.match(r"level\d+/", cells[0]):
                rows[cells[0]] = cells[1]
    return rows


# --- --small ----------------------------------------------------------------------------------
def small_value(value: int, floor: int = SMALL_FLOORS[0]) -> int:
    """A size at --small: the value itself up to `floor`; else its smallest divisor in
    [floor, 4 floor] with the same factor of 2 up to `floor` (channels stay divisible by
    their groups, embeddings by their heads), else floor + value % floor (irregular sizes
    stay irregular). `floor` is a power of 2."""
    if value <= floor:
        return value
    twos = math.gcd(value, floor)
    for d in range(floor, 4 * floor + 1):
        if value % d == 0 and math.gcd(d, floor) == twos:
            return d
    return floor + value % floor


def _literal(node: ast.expr) -> Any:
    """The value of an expression of literals only (`1024 * 2`), else None."""
    if any(isinstance(n, ast.Name) for n in ast.walk(node)):
        return None
    try:
        return eval(compile(ast.Expression(node), "<size>", "eval"), {"__builtins__": {}})
    except Exception:  # noqa: BLE001 - not a constant expression
        return None


def _sizes(value: Any) -> tuple[int, ...] | None:
    """The integers of a literal size constant (an int or a tuple of ints), else None."""
    values = value if isinstance(value, tuple) else (value,)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values) and values:
        return values
    return None


def _size_assignments(tree: ast.Module) -> list[tuple[str, ast.expr, Callable]]:
    """(name, value node, setter) of each module-level `name = literal sizes`, also for
    `a = b = 128` (both names) and `a, b = 1, 2` (element by element)."""
    found = []
    for stmt in tree.body:
        if not isinstance(stmt, ast.Assign):
            continue
        for target in stmt.targets:
            if isinstance(target, ast.Name):
                found.append((target.id, stmt.value,
                              lambda node, stmt=stmt: setattr(stmt, "value", node)))
            elif isinstance(target, ast.Tuple) and isinstance(stmt.value, ast.Tuple) \
                    and len(target.elts) == len(stmt.value.elts):
                for i, (t, v) in enumerate(zip(target.elts, stmt.value.elts)):
                    if isinstance(t, ast.Name):
                        found.append((t.id, v, lambda node, elts=stmt.value.elts, i=i:
                                      elts.__setitem__(i, node)))
    return [(n, v, set_) for n, v, set_ in found if _sizes(_literal(v)) is not None]


def shrink_source(text: str, file: str = "<problem>",
                  floor: int = SMALL_FLOORS[0]) -> tuple[str, dict[str, Any]]:
    """The problem's source with its module-level literal size constants shrunk, and what
    changed (name -> new value). A value is kept when it is at most KEEP_AT_MOST or its name
    is STRUCTURAL; a value that only batch-named constants hold becomes BATCH_SMALL; every
    other value becomes small_value(value, floor), the same for every name holding it (a
    model that relies on batch_size == dim keeps working). Constants computed from others
    (`bias_shape = (out_channels, 1, 1)`) follow the shrunk ones."""
    tree = ast.parse(text, file)
    found = _size_assignments(tree)
    holders: dict[int, set[str]] = {}
    for name, node, _ in found:
        for v in _sizes(_literal(node)):
            holders.setdefault(v, set()).add(name)

    def shrunk(name: str, v: int) -> int:
        if v <= KEEP_AT_MOST or STRUCTURAL.search(name):
            return v
        if all("batch" in n.lower() for n in holders[v]):
            return BATCH_SMALL
        return small_value(v, floor)

    changed: dict[str, Any] = {}
    for name, node, set_node in found:
        old = _literal(node)
        new = tuple(shrunk(name, v) for v in old) if isinstance(old, tuple) else shrunk(name, old)
        if new != old:
            set_node(ast.parse(repr(new), mode="eval").body)
            changed[name] = new
    return ast.unparse(ast.fix_missing_locations(tree)), changed


def exec_problem(problem: Problem, floor: int | None = None) -> dict[str, Any]:
    """The problem file's namespace (Model, get_inputs, get_init_inputs, its constants), as
    KernelBench loads it: the file's text exec'ed in a fresh dict; with a floor, its sizes
    shrunk first (shrink_source)."""
    text = problem.path.read_text()
    if floor is not None:
        text, _ = shrink_source(text, str(problem.path), floor)
    namespace: dict[str, Any] = {"__name__": f"kernelbench_{problem.level}_{problem.number}"}
    exec(compile(text, str(problem.path), "exec"), namespace)
    missing = [n for n in ("Model", "get_inputs", "get_init_inputs") if n not in namespace]
    if missing:
        raise KernelBenchError(f"{problem.path} defines no {', '.join(missing)}")
    return namespace


# --- translation headers ----------------------------------------------------------------------
def parse_small(text: str, where: str) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, eq, value = item.partition("=")
        if not eq or not name.strip().isidentifier() or not value.strip().isdigit():
            raise KernelBenchError(f"{where}: '# small:' wants SYM=V, SYM=V; got '{item}'")
        sizes[name.strip()] = int(value)
    return sizes


def read_header(path: Path) -> Header:
    """The directives of the comment lines before the first `kernel`; the first line must be
    `# kernelbench: level<L>/<stem>.py`."""
    lines = path.read_text().splitlines()
    first = DIRECTIVE.match(lines[0].strip()) if lines else None
    if not first or first.group(1) != "kernelbench":
        raise KernelBenchError(f"{path}:1: the first line must be '# kernelbench: "
                               f"level<L>/<stem>.py'")
    header = Header(first.group(2).strip())
    for number, line in enumerate(lines[1:], start=2):
        if line.lstrip().startswith("kernel"):
            break
        m = DIRECTIVE.match(line.strip())
        if not m:
            continue
        kind, value, where = m.group(1), m.group(2).strip(), f"{path}:{number}"
        if kind == "bind":
            name, eq, expr = value.partition("=")
            if not eq or not name.strip().isidentifier():
                raise KernelBenchError(f"{where}: '# bind:' wants NAME = EXPR; got '{value}'")
            header.binds[name.strip()] = expr.strip()
        elif kind == "result":
            header.result = value
        elif kind == "small":
            header.small.update(parse_small(value, where))
        else:
            raise KernelBenchError(f"{where}: a second '# kernelbench:' line")
    return header

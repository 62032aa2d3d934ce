"""What one thread of the split per row (split_rows.py) folds for a reduction: its running
state, the values each reduced position contributes (terms), and how two states of one row
combine (across lanes, warps and slices, in a fixed order: the result does not depend on the
schedule).

- PlainFold: sum / mean / prod / max / min, compensated for f32 sums (exprs.compensated);
- ArgFold: argmax / argmin, a (value, index) pair; ties and NaNs go to the smaller index
  (torch's rule: kspec_arg_better in templates/helpers.j2), so any merge order agrees;
- CentredFold: a mean and, over the same terms, the sum or mean of their squared deviations
  from it (lowering/pairs.py's "centred" pair: batch, layer, instance and group norm's
  statistics in one pass). Terms are shifted by the row's first term s and summed with their
  squares: mean = s + S1 / n, centred sum of squares = S2 - S1^2 / n. The shift keeps the
  sums of order n * std^2 where the mean is far from zero (mean 100, std 1 loses nothing),
  where the plain sum of squares would cancel catastrophically.

States are written with a subscript (`[c]` in the phase-1 kernel, whose thread holds several
columns; "" in the finishing one); terms with theirs (`[u][c]`).
"""
from __future__ import annotations

from dataclasses import dataclass

from ... import ir
from .code import ADD, MUL, Code, convert, literal
from .exprs import compensated, identity
from .loops import StatementRenderer
from .names import Namer

OP_CODE = {"sum": 0, "mean": 0, "prod": 1, "max": 2, "min": 3}   # kspec_combine's codes


@dataclass(frozen=True)
class Var:
    name: str
    ctype: str
    init: str


def add_line(op: str, acc: Var, comp: Var | None, s: str, x: str, ctx) -> str:
    """The statement folding x into the state `acc` (and `comp`, compensated) under op."""
    if comp is not None:
        ctx.helpers.add("kspec_sum_add")
        return f"kspec_sum_add({acc.name}{s}, {comp.name}{s}, {x});"
    if op in ("sum", "mean"):
        return f"{acc.name}{s} += {x};"
    if op == "prod":
        return f"{acc.name}{s} *= {x};"
    ctx.helpers.add("kspec_combine")
    return f"{acc.name}{s} = kspec_combine<{OP_CODE[op]}>({acc.name}{s}, {x});"


def total_lines(acc: Var, comp: Var | None, s: str, again: bool) -> list[str]:
    """The correction taken off a compensated sum after its last fold; `again`: the sum
    merges more terms later (its compensation restarts at 0)."""
    if comp is None:
        return []
    return [f"{acc.name}{s} -= {comp.name}{s};"] + ([f"{comp.name}{s} = 0;"] if again else [])


def sum_state(r: StatementRenderer, namer: Namer, base: str, op: str,
              ctype: str) -> tuple[Var, Var | None]:
    acc = Var(namer.fresh(base), ctype, identity(op, ctype, r.d).text)
    comp = Var(namer.fresh(f"{base}_comp"), ctype, acc.init) if compensated(op, ctype) else None
    return acc, comp


class PlainFold:
    def __init__(self, r: StatementRenderer, namer: Namer, red: ir.Reduce):
        self.reduces = [red]
        self.op = red.op
        self.ctx = r.accumulator(red)
        self.kind = red.op + (" (compensated)" if compensated(red.op, self.ctx.ctype) else "")
        self.acc, self.comp = sum_state(r, namer, f"{red.op}_{'_'.join(v.name for v in red.vars)}",
                                        red.op, self.ctx.ctype)
        self.states = [self.acc] + ([self.comp] if self.comp else [])
        self.partials = [self.acc]
        self.terms = [Var(namer.fresh(f"{self.acc.name}_t"), self.ctx.ctype, "")]

    def term_values(self, r: StatementRenderer, index: list[str]) -> list[str]:
        return [convert(r.render(self.reduces[0].body), self.acc.ctype, r.d).text]

    def fold(self, s: str, t: str) -> list[str]:
        return self.merge(s, [f"{self.terms[0].name}{t}"])

    def merge(self, s: str, other: list[str]) -> list[str]:
        return [add_line(self.op, self.acc, self.comp, s, other[0], self.ctx)]

    def total(self, s: str, again: bool = True) -> list[str]:
        return total_lines(self.acc, self.comp, s, again)

    def warp(self, s: str) -> list[str]:
        self.ctx.helpers.add("kspec_team_reduce")
        return [f"{self.acc.name}{s} = kspec_warp_reduce<{OP_CODE[self.op]}>("
                f"{self.acc.name}{s});"]

    def values(self, r: StatementRenderer, s: str) -> None:
        r.seed(self.reduces[0], r.finish(self.reduces[0], Code(f"{self.acc.name}{s}",
                                                               self.acc.ctype)))


class ArgFold:
    def __init__(self, r: StatementRenderer, namer: Namer, red: ir.Reduce):
        (v,) = red.vars
        self.reduces = [red]
        self.kind = f"{red.op} (value, index)"
        self.max = int(red.op == "argmax")
        ctype = r.accumulator(red).ctype
        extreme = "max" if self.max else "min"
        self.best = Var(namer.fresh(f"{extreme}_{v.name}"), ctype,
                        identity(extreme, ctype, r.d).text)
        self.at = Var(namer.fresh(f"{red.op}_{v.name}"), "int64_t", "INT64_MAX")
        self.states = self.partials = [self.best, self.at]
        self.terms = [Var(namer.fresh(f"{self.best.name}_t"), ctype, ""),
                      Var(namer.fresh(f"{self.at.name}_t"), "int64_t", "")]
        r.helpers |= {"kspec_arg_better"}

    def term_values(self, r: StatementRenderer, index: list[str]) -> list[str]:
        return [convert(r.render(self.reduces[0].body), self.best.ctype, r.d).text, index[0]]

    def merge(self, s: str, other: list[str]) -> list[str]:
        b, a = f"{self.best.name}{s}", f"{self.at.name}{s}"
        return [f"if (kspec_arg_better<{self.max}>({other[0]}, {other[1]}, {b}, {a})) "
                f"{{ {b} = {other[0]}; {a} = {other[1]}; }}"]

    def fold(self, s: str, t: str) -> list[str]:
        return self.merge(s, [f"{x.name}{t}" for x in self.terms])

    def total(self, s: str, again: bool = True) -> list[str]:
        return []

    def warp(self, s: str) -> list[str]:
        return [f"kspec_warp_arg<{self.max}>({self.best.name}{s}, {self.at.name}{s});"]

    def values(self, r: StatementRenderer, s: str) -> None:
        r.seed(self.reduces[0], Code(f"{self.at.name}{s}", "int64_t"))


class CentredFold:
    """`mean`, the first statement's whole value, and `second`, the later reduction of its
    squared deviations (pairs.fused_pairs' "centred")."""

    def __init__(self, r: StatementRenderer, namer: Namer, mean: ir.Reduce,
                 second: ir.Reduce):
        self.reduces = [mean, second]
        self.kind = f"mean and {second.op} of squared deviations (shifted sums, one pass)"
        self.ctx = r.accumulator(mean)
        ctype = self.ctx.ctype
        base = "_".join(v.name for v in mean.vars)
        self.sums = [sum_state(r, namer, f"{kind}_{base}", "sum", ctype)
                     for kind in ("shifted", "squares")]
        self.states = [v for pair in self.sums for v in pair if v is not None]
        self.partials = [acc for acc, _ in self.sums]
        self.shift = Var(namer.fresh(f"shift_{base}"), ctype, "")
        self.terms = [Var(namer.fresh(f"dev_{base}"), ctype, "")]

    def shift_value(self, r: StatementRenderer) -> str:
        """The row's first term (rendered where the reduced indices are 0)."""
        return convert(r.render(self.reduces[0].body), self.shift.ctype, r.d).text

    def term_values(self, r: StatementRenderer, index: list[str]) -> list[str]:
        body = convert(r.render(self.reduces[0].body), self.shift.ctype, r.d)
        return [f"{body.wrapped(ADD)} - {self.shift.name}[c]"]

    def fold(self, s: str, t: str) -> list[str]:
        x = f"{self.terms[0].name}{t}"
        return self.merge(s, [x, f"{x} * {x}"])

    def merge(self, s: str, other: list[str]) -> list[str]:
        return [add_line("sum", acc, comp, s, o, self.ctx)
                for (acc, comp), o in zip(self.sums, other)]

    def total(self, s: str, again: bool = True) -> list[str]:
        return [x for acc, comp in self.sums for x in total_lines(acc, comp, s, again)]

    def warp(self, s: str) -> list[str]:
        self.ctx.helpers.add("kspec_team_reduce")
        return [f"{acc.name}{s} = kspec_warp_reduce<0>({acc.name}{s});" for acc, _ in self.sums]

    def values(self, r: StatementRenderer, s: str) -> None:
        """Seeds the mean (shift + S1 / n) and the second reduction (the centred sum of
        squares S2 - S1 * (S1 / n), at least 0, through its own finish: a mean divides by n)."""
        mean, second = self.reduces
        s1, s2 = (Code(f"{acc.name}{s}", acc.ctype) for acc, _ in self.sums)
        offset = r.finish(mean, s1)
        r.seed(mean, Code(f"{self.shift.name}{s} + {offset.wrapped(ADD + 1)}", offset.ctype,
                          ADD))
        zero = literal(0, s2.ctype, r.d).text
        squares = Code(f"kspec_max({s2.text} - {s1.text} * {offset.wrapped(MUL + 1)}, {zero})",
                       s2.ctype)
        r.helpers.add("kspec_max")
        r.seed(second, r.finish(second, squares))


__all__ = ["PlainFold", "ArgFold", "CentredFold", "Var", "OP_CODE"]

"""Symbolic shape expressions: integer polynomials over shape symbols, with opaque `//` and min atoms.

Dims (`f32[N, H - KH + 1]`) and index ranges are values of `Shape`. The canonical polynomial
form makes `H - KH + 1 == 1 + H - KH` decidable, which range unification and bound proofs need.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Union


@dataclass(frozen=True)
class FloorDiv:
    num: "Shape"
    den: "Shape"

    def __str__(self) -> str:
        return f"{_paren(self.num)} // {_paren(self.den)}"


@dataclass(frozen=True)
class Min:
    a: "Shape"
    b: "Shape"

    def __str__(self) -> str:
        return f"min({self.a}, {self.b})"


Atom = Union[str, FloorDiv, Min]
Monomial = tuple  # sorted tuple of atoms; () is the constant term


def _key(atom: Atom) -> str:
    return atom if isinstance(atom, str) else "~" + str(atom)


class Shape:
    """An immutable integer polynomial. Build with Shape.const / Shape.sym and + - * //."""

    __slots__ = ("terms",)

    def __init__(self, terms: Mapping[Monomial, int]):
        self.terms: tuple = tuple(sorted(((m, c) for m, c in terms.items() if c != 0),
                                         key=lambda mc: (len(mc[0]), [_key(a) for a in mc[0]])))

    @staticmethod
    def const(value: int) -> "Shape":
        return Shape({(): int(value)})

    @staticmethod
    def sym(name: str) -> "Shape":
        return Shape({(name,): 1})

    @staticmethod
    def of(value: "Shape | int") -> "Shape":
        return value if isinstance(value, Shape) else Shape.const(value)

    # --- queries ---------------------------------------------------------------------------
    @property
    def is_const(self) -> bool:
        return all(m == () for m, _ in self.terms)

    @property
    def value(self) -> int:
        assert self.is_const, self
        return self.terms[0][1] if self.terms else 0

    def symbols(self) -> set[str]:
        out: set[str] = set()
        for mono, _ in self.terms:
            for atom in mono:
                out |= {atom} if isinstance(atom, str) else _atom_symbols(atom)
        return out

    def evaluate(self, env: Mapping[str, int]) -> int:
        total = 0
        for mono, coeff in self.terms:
            prod = coeff
            for atom in mono:
                prod *= _eval_atom(atom, env)
            total += prod
        return total

    def provably_nonneg(self) -> bool:
        """True when self >= 0 for every binding of its symbols to integers >= 1 (shape symbols
        are at least 1 at launch). Substitutes s -> 1 + s' and asks for non-negative coefficients."""
        if any(not isinstance(a, str) for mono, _ in self.terms for a in mono):
            return self.is_const and self.value >= 0
        shifted = Shape.const(0)
        for mono, coeff in self.terms:
            term = Shape.const(coeff)
            for atom in mono:
                term = term * (Shape.sym(atom) + 1)
            shifted = shifted + term
        return all(c >= 0 for _, c in shifted.terms)

    def linear_in(self, name: str) -> tuple[int, "Shape"] | None:
        """(a, b) with self == a*name + b and b free of name, or None when not of that form."""
        a, rest = 0, {}
        for mono, coeff in self.terms:
            if mono == (name,):
                a += coeff
            elif name in Shape({mono: 1}).symbols():
                return None
            else:
                rest[mono] = coeff
        return a, Shape(rest)

    # --- arithmetic --------------------------------------------------------------------------
    def __add__(self, other: "Shape | int") -> "Shape":
        out = dict(self.terms)
        for m, c in Shape.of(other).terms:
            out[m] = out.get(m, 0) + c
        return Shape(out)

    __radd__ = __add__

    def __neg__(self) -> "Shape":
        return Shape({m: -c for m, c in self.terms})

    def __sub__(self, other: "Shape | int") -> "Shape":
        return self + (-Shape.of(other))

    def __rsub__(self, other: "Shape | int") -> "Shape":
        return Shape.of(other) - self

    def __mul__(self, other: "Shape | int") -> "Shape":
        out: dict = {}
        for m1, c1 in self.terms:
            for m2, c2 in Shape.of(other).terms:
                m = tuple(sorted(m1 + m2, key=_key))
                out[m] = out.get(m, 0) + c1 * c2
        return Shape(out)

    __rmul__ = __mul__

    def __floordiv__(self, other: "Shape | int") -> "Shape":
        den = Shape.of(other)
        if den.is_const:
            d = den.value
            if d == 0:
                raise ZeroDivisionError("shape expression divides by zero")
            if self.is_const:
                return Shape.const(self.value // d)
            if all(c % d == 0 for _, c in self.terms):
                return Shape({m: c // d for m, c in self.terms})
        return Shape({(FloorDiv(self, den),): 1})

    def min(self, other: "Shape") -> "Shape":
        diff = self - other
        if diff.is_const:
            return self if diff.value <= 0 else other
        a, b = sorted((self, other), key=str)
        return Shape({(Min(a, b),): 1})

    # --- identity and printing -----------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if isinstance(other, int):
            other = Shape.const(other)
        return isinstance(other, Shape) and self.terms == other.terms

    def __hash__(self) -> int:
        return hash(self.terms)

    def __str__(self) -> str:
        if not self.terms:
            return "0"
        parts: list[str] = []
        # positive terms first, so `H - KH + 1` reads as written; the constant last
        ordered = sorted(self.terms, key=lambda mc: (mc[0] == (), mc[1] < 0))
        for mono, coeff in ordered:
            body = " * ".join(_paren(a) if not isinstance(a, str) else a for a in mono)
            mag = abs(coeff)
            text = body if mono and mag == 1 else (f"{mag} * {body}" if mono else str(mag))
            if not parts:
                parts.append(("-" if coeff < 0 else "") + text)
            else:
                parts.append(("- " if coeff < 0 else "+ ") + text)
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"Shape({self})"


def _paren(x: object) -> str:
    s = str(x)
    simple = s.isidentifier() or s.lstrip("-").isdigit() or s.startswith("min(")
    return s if simple else f"({s})"


def _atom_symbols(atom: Atom) -> set[str]:
    if isinstance(atom, FloorDiv):
        return atom.num.symbols() | atom.den.symbols()
    return atom.a.symbols() | atom.b.symbols()


def _eval_atom(atom: Atom, env: Mapping[str, int]) -> int:
    if isinstance(atom, str):
        return env[atom]
    if isinstance(atom, FloorDiv):
        den = atom.den.evaluate(env)
        if den == 0:
            raise ZeroDivisionError(f"shape expression {atom} divides by zero")
        return atom.num.evaluate(env) // den
    return min(atom.a.evaluate(env), atom.b.evaluate(env))

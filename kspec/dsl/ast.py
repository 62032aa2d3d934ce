"""The untyped syntax tree: what the parser builds and the semantic checks consume."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from ..errors import SourcePos


@dataclass
class Num:
    text: str
    value: Union[int, float]
    pos: SourcePos


@dataclass
class Name:
    id: str
    pos: SourcePos


@dataclass
class Index:
    name: str
    args: list["Node"]
    pos: SourcePos


@dataclass
class Call:
    name: str
    args: list["Node"]
    pos: SourcePos


@dataclass
class Padded:
    """`pad(x, 0)[i - 1, j]`: a read of `x` that takes the value `0` outside it. `call` is the
    `pad(...)` part as written (checked by the semantics: a tensor and a constant)."""

    call: Call
    args: list["Node"]
    pos: SourcePos


@dataclass
class RedVar:
    name: str
    bound: "Node | None"
    pos: SourcePos
    relation: str = "<"   # `for k <= j`, `k >= j`, `k > j`: a scan (`k < j` is one too)


@dataclass
class Generator:
    fn: str
    body: "Node"
    vars: list[RedVar]
    pos: SourcePos


@dataclass
class BinOp:
    op: str          # source spelling: + - * / // % ** < <= ... and or
    a: "Node"
    b: "Node"
    pos: SourcePos   # the operator


@dataclass
class UnOp:
    op: str          # "-", "+", "not"
    a: "Node"
    pos: SourcePos


Node = Union[Num, Name, Index, Padded, Call, Generator, BinOp, UnOp]


@dataclass
class TypeRef:
    dtype: str
    dims: "list[Node] | None"   # None: a scalar
    pos: SourcePos


@dataclass
class Param:
    name: str
    type: TypeRef
    default: "Node | None"
    pos: SourcePos


@dataclass
class Stmt:
    target: str
    indices: "list[Node] | None"   # None: `name = expr`
    value: Node
    pos: SourcePos


@dataclass
class KernelDef:
    name: str
    params: list[Param]
    outputs: list[Param]
    body: list[Stmt]
    pos: SourcePos


@dataclass
class File:
    kernels: list[KernelDef]
    name: str
    source: str

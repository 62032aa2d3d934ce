"""C++ identifiers for kspec names: kept as written where possible, never clashing.

kspec names may be C++ keywords (`int`, `new`), device built-ins (`threadIdx`), math functions
the generated code calls (`expf`), or collide with generated locals (`linear`, `sum_k`). A
`Namer` hands out unique identifiers: a user name keeps its spelling unless it is reserved or
taken, in which case it gets a numeric suffix.
"""
from __future__ import annotations

from .dialect import Dialect

CXX_KEYWORDS = set("""
alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t
char32_t class compl concept const consteval constexpr constinit const_cast continue co_await
co_return co_yield decltype default delete do double dynamic_cast else enum explicit export
extern false float for friend goto if inline int long mutable namespace new noexcept not not_eq
nullptr operator or or_eq private protected public register reinterpret_cast requires return
short signed sizeof static static_assert static_cast struct switch template this thread_local
throw true try typedef typeid typename union unsigned using virtual void volatile wchar_t while
xor xor_eq restrict
""".split())

DEVICE_NAMES = set("""
threadIdx blockIdx blockDim gridDim warpSize std min max abs fabs exp log sqrt pow floor ceil
int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t size_t half __half
hip_bfloat16 nv_bfloat16 __nv_bfloat16 INFINITY NAN INT64_MIN INT64_MAX assert printf
linear total rest
""".split())


def reserved_for(dialect: Dialect) -> set[str]:
    math = {n for pair in dialect.math.values() for n in pair}
    return CXX_KEYWORDS | DEVICE_NAMES | math


class Namer:
    def __init__(self, reserved: set[str]):
        self.reserved = reserved
        self.taken: set[str] = set()

    def fresh(self, base: str) -> str:
        """`base` itself when free, else base_2, base_3, ..."""
        def bad(n: str) -> bool:
            return n in self.taken or n in self.reserved or n.startswith("kspec_") or "__" in n

        name, k = base, 1
        while bad(name):
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name

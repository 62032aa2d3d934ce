"""Index ranges of the semantic checks: inferred from bare uses and affine accesses, then
every access proved in bounds or turned into a launch-time check. A mixin of
semantics.KernelChecker."""
from __future__ import annotations

from .. import ir
from ..errors import SourcePos
from ..shapes import Shape
from .context import StatementScope, Var, error


class RangeChecks:
    """Ranges and bounds of one statement's index variables (mixed into the kernel checker)."""

    # --- ranges ---------------------------------------------------------------------------------
    def solve_ranges(self, st: StatementScope) -> None:
        by_uid = {v.uid: v for v in st.vars}
        # 1. bare uses: the range is the dim; several bare uses must agree.
        origin: dict[int, str] = {v.uid: "its declaration" for v in st.vars if v.explicit}
        for acc in st.accesses:
            for d, (coeffs, offset, pos) in enumerate(acc.index):
                if len(coeffs) == 1 and offset == 0 and next(iter(coeffs.values())) == 1:
                    var = by_uid[next(iter(coeffs))]
                    dim = acc.dims[d]
                    where = f"{acc.tensor} (dim {d})"
                    if var.extent is None:
                        var.extent, origin[var.uid] = dim, where
                    elif var.bounded:
                        continue  # `for k < E`: only the bounds check below applies
                    elif var.extent != dim:
                        self.unify(var, var.extent, origin[var.uid], dim, where, pos)
        # 2. indices used only inside affine expressions: the largest in-bounds range.
        progress = True
        while progress:
            progress = False
            candidates: dict[int, Shape] = {}
            for acc in st.accesses:
                for d, (coeffs, offset, pos) in enumerate(acc.index):
                    unknown = [u for u in coeffs if by_uid[u].extent is None]
                    if len(unknown) != 1:
                        continue
                    u = unknown[0]
                    c = coeffs[u]
                    rest_max = offset + sum((by_uid[k].extent - 1) * v for k, v in coeffs.items()
                                            if k != u and v > 0)
                    rest_min = offset + sum((by_uid[k].extent - 1) * v for k, v in coeffs.items()
                                            if k != u and v < 0)
                    if c > 0:
                        bound = (acc.dims[d] - 1 - rest_max) // c + 1
                    else:
                        bound = rest_min // (-c) + 1
                    candidates[u] = candidates[u].min(bound) if u in candidates else bound
            for u, extent in candidates.items():
                var = by_uid[u]
                var.extent = extent
                self.require_positive(extent, f"the inferred range of index '{var.name}' is "
                                      f"{extent} (the largest that keeps every access using "
                                      f"it in bounds)", var.pos)
                progress = True
        for var in st.vars:
            if var.extent is None and var.uid in st.gathered:
                raise error(f"cannot infer the range of index '{var.name}': an index added "
                            f"to a gathered one is not bounded by it; give it a range "
                            f"(for {var.name} < 3) or use it in another read", var.pos)
            if var.extent is None and var.uid in st.padded:
                fix = (f"give it a range (for {var.name} < 3)" if var.reduced else
                       "assign a declared output here")
                raise error(f"cannot infer the range of index '{var.name}': a padded read "
                            f"does not bound its indices; {fix} or use it in an unpadded read",
                            var.pos)
            if var.extent is None and not var.reduced:
                raise error(f"cannot infer the range of index '{var.name}'; use it bare as an "
                            f"index of a tensor on the right-hand side", var.pos)
            if var.extent is None:
                raise error(f"cannot infer the range of index '{var.name}'; use it bare as a "
                            f"tensor index or give it a range: for {var.name} < N", var.pos)
            if var.ir is None:
                self.ir_var(var)
            object.__setattr__(var.ir, "extent", var.extent)
            object.__setattr__(var.ir, "given", var.bounded)
        # 3. every access in bounds: proved here, or checked at launch.
        for acc in st.accesses:
            for d, (coeffs, offset, pos) in enumerate(acc.index):
                hi = offset + sum((by_uid[u].extent - 1) * c for u, c in coeffs.items() if c > 0)
                lo = offset + sum((by_uid[u].extent - 1) * c for u, c in coeffs.items() if c < 0)
                dim = acc.dims[d]
                self.in_bounds(dim - 1 - hi, f"{acc.tensor} (dim {d}, size {dim}) is indexed up "
                               f"to {hi}", pos, f"; the largest valid index is {dim - 1}")
                self.in_bounds(lo, f"{acc.tensor} (dim {d}) is indexed down to {lo}", pos,
                               "; the smallest valid index is 0")

    def unify(self, var: Var, a: Shape, a_from: str, b: Shape, b_from: str,
              pos: SourcePos) -> None:
        if (a - b).is_const or (a - b - 1).provably_nonneg() or (b - a - 1).provably_nonneg():
            raise error(f"index '{var.name}' is used with two ranges: {a} from {a_from} and "
                        f"{b} from {b_from}", pos)
        self.checks.append(ir.Check(a - b, "==", f"index '{var.name}' ranges over {a} from "
                                    f"{a_from} and {b} from {b_from}; they must be equal", pos))

    def in_bounds(self, slack: Shape, what: str, pos: SourcePos, hint: str = "") -> None:
        if slack.is_const and slack.value < 0 or (-slack - 1).provably_nonneg():
            raise error(f"index out of bounds: {what}{hint}", pos)
        if not slack.provably_nonneg():
            self.checks.append(ir.Check(slack, ">=", f"index out of bounds: {what}", pos))

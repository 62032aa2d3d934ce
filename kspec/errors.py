"""The project's exception types. Every rejection of user input is one of these, never a traceback."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SourcePos:
    """A position in a .kspec source: 1-based line and column, plus the source text for the caret."""

    file: str
    line: int
    col: int
    source: str = field(default="", repr=False, compare=False)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def excerpt(self) -> str:
        lines = self.source.split("\n")  # not splitlines(): a form feed is not a line end here
        if not 1 <= self.line <= len(lines):
            return ""
        text = lines[self.line - 1].expandtabs(1)
        return f"    {text}\n    {' ' * (self.col - 1)}^"


class KspecError(Exception):
    """Base of every error kspec reports to a user."""

    kind = "error"

    def __init__(self, message: str, pos: SourcePos | None = None):
        super().__init__(message)
        self.message = message
        self.pos = pos

    def __str__(self) -> str:
        if self.pos is None:
            return f"{self.kind}: {self.message}"
        excerpt = self.pos.excerpt()
        head = f"{self.pos}: {self.kind}: {self.message}"
        return f"{head}\n{excerpt}" if excerpt else head


class KspecSyntaxError(KspecError):
    kind = "syntax error"


class KspecSemanticError(KspecError):
    kind = "error"


class KspecLaunchError(KspecError):
    """Arguments that do not fit a kernel's signature: wrong count, dtype, or shape-symbol conflicts."""

    kind = "launch error"


class BackendUnavailable(KspecError):
    kind = "backend unavailable"


class ToolchainError(KspecError):
    """A backend's compiler rejected generated or user-supplied source."""

    kind = "toolchain error"


class KspecGradError(KspecError):
    """A kernel whose derivative kspec cannot derive (integer outputs, argmax, a scatter)."""

    kind = "no derivative"

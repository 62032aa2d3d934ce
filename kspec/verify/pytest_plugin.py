"""Checking your own .kspec files in your test suite.

Either call the function in a test:

    from kspec.verify import check_spec

    def test_my_kernels():
        check_spec("kernels/my_norm.kspec")          # every kernel, every backend that runs here

or enable the plugin (in conftest.py: `pytest_plugins = ["kspec.verify.pytest_plugin"]`) and
use the `kspec_check` fixture, or run `pytest --kspec-check DIR_OR_FILE` to collect one test per
kernel of every .kspec file found there.

Hypothesis settings for CI: few examples, derandomized (a fixed seed), small tensors.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


def check_spec(path: str | Path, kernel: str | None = None, *, examples: int = 5,
               seed: int = 0, max_elements: int = 1024, compile_only: bool = False,
               **kw: Any) -> list:
    """Run the portability check on every kernel of a .kspec file (or one); fail the calling
    test with the report when a backend that ran disagrees with the reference."""
    import kspec

    from .portability import portability

    mod = kspec.load(path)
    kernels = [mod[kernel]] if kernel else list(mod)
    reports = [portability(k, examples=examples, seed=seed, max_elements=max_elements,
                           compile_only=compile_only, **kw) for k in kernels]
    bad = [r for r in reports if not r.ok]
    if bad:
        pytest.fail("\n\n".join(r.text() for r in bad), pytrace=False)
    return reports


@pytest.fixture
def kspec_check():
    """The `check_spec` function: `kspec_check("my.kspec", kernel="softmax")`."""
    return check_spec


def pytest_addoption(parser) -> None:
    group = parser.getgroup("kspec")
    group.addoption("--kspec-check", action="append", default=[], metavar="PATH",
                    help="collect a test per kernel of the .kspec files under PATH")
    group.addoption("--kspec-examples", type=int, default=5,
                    help="Hypothesis examples per backend (default 5)")


def pytest_collect_file(parent, file_path: Path):
    roots = [Path(p).resolve() for p in parent.config.getoption("kspec_check")]
    if file_path.suffix == ".kspec" and any(
            file_path.resolve() == r or r in file_path.resolve().parents for r in roots):
        return KspecFile.from_parent(parent, path=file_path)
    return None


class KspecFile(pytest.File):
    def collect(self):
        import kspec

        for k in kspec.load(self.path):
            yield KspecItem.from_parent(self, name=k.name)


class KspecItem(pytest.Item):
    def runtest(self) -> None:
        check_spec(self.path, self.name,
                   examples=self.config.getoption("kspec_examples"))

    def reportinfo(self):
        return self.path, None, f"kspec check {self.path.name}::{self.name}"

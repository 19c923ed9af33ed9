"""The house rules as tests (`make lint` runs the same tools while editing): ruff, the
import-layer contract, mypy, and no waiver without a reason. In the suite they run beside
the other tests instead of before them, so `make test` is not a minute longer for them; a
finding fails the run all the same, with the tool's own report."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*command: str) -> None:
    done = subprocess.run([str(BIN / command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(command)} found:\n{done.stdout}{done.stderr}"


def test_mypy_finds_no_type_error():
    _run("mypy")  # files and settings: pyproject.toml [tool.mypy]


def test_ruff_finds_nothing():
    _run("ruff", "check", "lookalike", "tests", "bench")


def test_imports_keep_to_the_layers():
    _run("lint-imports", "--no-cache")  # the contract: pyproject.toml [tool.importlinter]


WAIVER = re.compile(r"noqa: *(ANN|SLF)[0-9A-Z, ]*$")


def test_every_annotation_or_private_access_waiver_says_why():
    """``# noqa: ANN001 - because …``: a bare waiver hides a decision nobody can review."""
    bare = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
            for folder in ("lookalike", "bench", "tests") for path in sorted((ROOT / folder).rglob("*.py"))
            for n, line in enumerate(path.read_text().splitlines(), 1) if WAIVER.search(line)]
    assert not bare, "waivers without a reason:\n" + "\n".join(bare)


def test_the_waiver_rule_sees_a_bare_waiver():
    assert WAIVER.search("x = f(y)  # noqa: ANN001") and WAIVER.search("obj._x  # noqa: SLF001")
    assert not WAIVER.search("x = f(y)  # noqa: ANN001 - a callback typer inspects")

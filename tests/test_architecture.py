"""The shape of the house, checked: no import cycle, every part named in the README's map,
heavy libraries never imported with the package, the API's exports really there, no module
over 500 lines and no one-line forwards on the Library."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import grimp

import lookalike

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lookalike"


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_back_even_lazily():
    """Lazy imports inside functions count too; only TYPE_CHECKING imports do not."""
    graph = grimp.build_graph("lookalike", exclude_type_checking_imports=True)
    modules = set(graph.modules)
    edges = {m: set(graph.find_modules_directly_imported_by(m)) & modules for m in modules}
    assert _cycles(edges) == []


def test_the_architecture_map_names_every_package_and_top_level_module():
    """docs/architecture.md's file map (the README shows the layers only)."""
    readme = (ROOT / "docs" / "architecture.md").read_text()
    block = readme
    block = block[block.index("lookalike/\n"):]
    block = block[:block.index("```")]
    parts = [p.name + "/" for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    parts += [p.name for p in PACKAGE.glob("*.py")]
    missing = [p for p in parts if not re.search(rf"(^|\s){re.escape(p)}(\s|$)", block, re.M)]
    assert missing == [], f"docs/architecture.md's map does not name {missing}"
    for package in PACKAGE.iterdir():  # each module of a stage package is named beside it
        if package.is_dir() and (package / "__init__.py").exists() and package.name not in ("ui", "cli"):
            for module in package.glob("*.py"):
                if module.name != "__init__.py":
                    assert module.name in block, f"{package.name}/{module.name} is not in docs/architecture.md's map"


def test_importing_the_package_loads_no_heavy_library():
    code = ("import sys, lookalike, lookalike.cli; "
            "print(sorted(m for m in ('cv2', 'faiss', 'deepface', 'dlib', 'onnxruntime', 'sqlalchemy', "
            "'numpy', 'streamlit') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_api_exports_what_users_need():
    for name in lookalike.__all__:
        assert getattr(lookalike, name) is not None, name
    assert issubclass(lookalike.ConfigError, lookalike.LookalikeError)
    assert lookalike.SearchOptions(k=3).k == 3


def test_every_sql_statement_lives_in_the_store():
    sql = re.compile(r"(?<![.\w])select\(|(?<![.\w])text\("
                     r"|\b(session|conn|connection)\.(execute|get|get_one|add|add_all|delete|scalar|scalars|merge|flush|query)\(")
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] == "store":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if sql.search(line.split("#")[0]):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []


# Upward imports under TYPE_CHECKING that are still allowed: none. A stage is handed a
# protocol declared at its own level (query/context.py, ingest/protocol.py,
# index/protocol.py) and never names a layer above it.
KNOWN_UPWARD: set[tuple[str, str]] = set()
NEVER_UPWARD = ("lookalike.index", "lookalike.verbs.space", "lookalike.query")


def _layers() -> list[list[str]]:
    """The import-linter layers of pyproject.toml, top first; ``a | b`` are siblings."""
    return [[name.strip() for name in layer.split("|")] for layer in _layer_lines()]


def _layer_lines() -> list[str]:
    """The package's layers, top first (``"a | b"`` for siblings): the main contract's, with
    ``lookalike.verbs`` written out as the verbs' own contract's layers."""
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (main,) = [c for c in contracts if c["type"] == "layers" and not c.get("containers")]
    (verbs,) = [c for c in contracts if c.get("containers") == ["lookalike.verbs"]]
    inner = [" | ".join(f"lookalike.verbs.{part.strip()}" for part in layer.split("|")) for layer in verbs["layers"]]
    out: list[str] = []
    for layer in main["layers"]:
        out += inner if layer.strip() == "lookalike.verbs" else [layer]
    return out


def _upward_imports(graph: grimp.ImportGraph, layers: list[list[str]]) -> set[tuple[str, str]]:
    """(importer, imported) pairs where a module names a layer above its own or a sibling
    of its layer, counting every import grimp sees in ``graph``."""
    def layer_of(module: str) -> tuple[int, str] | None:
        found = None
        for rank, group in enumerate(layers):
            for name in group:
                if module == name or module.startswith(name + "."):
                    found = (rank, name)
        return found

    out = set()
    for module in graph.modules:
        own = layer_of(module)
        if own is None:
            continue
        for target in graph.find_modules_directly_imported_by(module):
            theirs = layer_of(target)
            if theirs is not None and (theirs[0] < own[0] or (theirs[0] == own[0] and theirs[1] != own[1])):
                out.add((module, target))
    return out


def test_the_upward_import_finder_sees_type_checking_imports(tmp_path, monkeypatch):
    """A package whose lower layer names the upper one under TYPE_CHECKING only: found
    with those imports counted, unseen without (which is why the linter alone misses it)."""
    pkg = tmp_path / "house"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "top.py").write_text("from . import low\n")
    (pkg / "low.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import top\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    layers = [["house.top"], ["house.low"]]
    counted = grimp.build_graph("house", exclude_type_checking_imports=False, cache_dir=None)
    skipped = grimp.build_graph("house", exclude_type_checking_imports=True, cache_dir=None)
    assert _upward_imports(counted, layers) == {("house.low", "house.top")}
    assert _upward_imports(skipped, layers) == set()


def test_no_new_upward_import_even_under_type_checking():
    """A lower layer is handed values or a narrow protocol declared at its own level, never
    the type of a layer above it (issue 24): TYPE_CHECKING imports count here."""
    graph = grimp.build_graph("lookalike", exclude_type_checking_imports=False)
    found = _upward_imports(graph, _layers())
    assert not [pair for pair in KNOWN_UPWARD if pair[0].startswith(NEVER_UPWARD)]
    new = sorted(found - KNOWN_UPWARD)
    assert new == [], f"imports up the layers (hand the lower layer a protocol declared below it): {new}"
    gone = sorted(KNOWN_UPWARD - found)
    assert gone == [], f"these upward imports are gone: take them out of KNOWN_UPWARD: {gone}"


MAX_MODULE_LINES = 500


def test_no_module_is_over_500_lines():
    """A module past ~500 lines is split by what it does (issue 24), migrations included;
    the benchmarks and the tests too (bench/scale.py, 1,138 lines, became a runner and its
    parts' files; tests/conftest.py a few helpers and the fixture plugins it names)."""
    files = [*PACKAGE.rglob("*.py"), *(ROOT / "bench").glob("*.py"), *(ROOT / "tests").glob("*.py")]
    long = sorted(f"{path.relative_to(ROOT)}: {n} lines" for path in files
                  if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES)
    assert long == [], f"split these modules: {long}"


def _forwards(source: str, cls: str) -> list[str]:
    """Methods of class ``cls`` whose body (past a docstring and local imports) is one
    statement handing the call on to another object: ``return self.view.x(...)``,
    ``people.keys(self.session)``, ``Service(self.view).info()``, or a property that returns
    ``self.part.value``. Calling the class's own methods or a stage function with the
    library's parts (``search(self.view, photo, options)``: the verb itself) is not one."""
    (node,) = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ClassDef) and n.name == cls]
    found = []
    for method in node.body:
        if not isinstance(method, ast.FunctionDef):
            continue
        body = [s for s in method.body if not isinstance(s, (ast.Import, ast.ImportFrom))]
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]  # the docstring
        if len(body) != 1 or not isinstance(body[0], (ast.Return, ast.Expr)) or body[0].value is None:
            continue
        value = body[0].value
        if isinstance(value, ast.Call):
            callee = value.func
            if isinstance(callee, ast.Attribute) and not (isinstance(callee.value, ast.Name)
                                                          and callee.value.id == "self"):
                found.append(method.name)
        elif isinstance(value, ast.Attribute) and isinstance(value.value, ast.Attribute):
            found.append(method.name)  # self.part.value
    return found


def test_the_forward_finder_tells_a_forward_from_a_verb():
    source = """
class Library:
    def index(self):
        return self.view.vectors.index
    def keys(self):
        \"\"\"Every key.\"\"\"
        return people.keys(self.session)
    def info(self):
        from .maintenance import IndexMaintenance
        return IndexMaintenance(self.view.vectors).info()
    def drop(self, ids):
        self.backend.drop(ids)
    def search(self, photo):
        from .query.search import search
        return search(self.view, photo)
    def in_space(self, row):
        return self._make_view(row)
    def engine(self):
        return self._engine
    def spaces(self):
        return [row.key for row in self._spaces()]
"""
    assert _forwards(source, "Library") == ["index", "keys", "info", "drop"]


def test_the_library_has_no_one_line_forwards():
    """Callers reach a part through the Library (``lib.view``, ``lib.people``, ``lib.keys``,
    ``lib.maintenance``) instead of through a method that only passes the call on (issue 24)."""
    found = _forwards((PACKAGE / "verbs" / "library.py").read_text(), "Library")
    assert found == [], f"one-line forwards on Library: {found}"


def test_no_module_imports_another_modules_private_names():
    """A name with a leading underscore is its module's own: another module that needs it
    needs a public name (ruff's SLF rule sees ``obj._x``, not ``from m import _x``)."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                found += [f"{path.relative_to(ROOT)}:{node.lineno}: {alias.name}" for alias in node.names
                          if alias.name.startswith("_") and not alias.name.startswith("__")]
    assert found == []


def _view_handed(source: str) -> list[int]:
    """Lines where a call is handed ``something.view`` (a library's SpaceView) as an argument."""
    return [node.lineno for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)
            for arg in [*node.args, *(k.value for k in node.keywords)]
            if isinstance(arg, ast.Attribute) and arg.attr == "view"]


def test_no_shell_hands_a_stage_the_view():
    """The shells (cli, ui, serve) call the library's verbs and parts (``lib.measure.pca()``,
    ``lib.search(...)``), never a stage function with the library's view
    (``explore.pca(lib.view)``): the verbs are the one way in (architecture review 50, H2).
    Reading a part of the view (``lib.view.facts.calibration()``) is not handing it on."""
    assert _view_handed("explore.pca(lib.view, 5)\nlib.measure.pca(5)\nf(x, view=library.view)\n"
                        "lib.view.facts.calibration()\n") == [1, 3]
    shells = [path for shell in ("cli", "ui", "serve") for path in sorted((PACKAGE / shell).rglob("*.py"))]
    # and what a shell hands live matching (processes.py): it handed the view, as a LiveLibrary's
    found = [f"{path.relative_to(ROOT)}:{line}" for path in [*shells, PACKAGE / "processes.py"]
             for line in _view_handed(path.read_text())]
    assert found == [], f"a shell hands the view to a stage: {found}"


def test_the_documented_layer_line_is_the_contracts():
    """docs/architecture.md's arrow line names the import-linter contract's layers in its
    order (pyproject.toml): a layer added to one and not the other is a failure."""
    wanted = [" | ".join(sorted(part.strip().removeprefix("lookalike.") for part in layer.split("|")))
              for layer in _layer_lines()]
    doc = (ROOT / "docs" / "architecture.md").read_text()
    block = doc.split("```\n", 2)[1].split("```", 1)[0]
    said = [" | ".join(sorted(part.strip() for part in layer.split("|"))) for layer in block.split("→")]
    assert said == wanted


def test_no_function_takes_ten_parameters():
    """A command's flags come in option groups (lookalike/cli/_options.py: the library, the
    space, ranking, whom, analysis, face math, reading, the server's limits) and a function's
    values in objects, not ten keywords (review 50, M3; review 51, M4)."""
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args
                names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
                count = len(names) - (names[:1] in (["self"], ["cls"]))
                if count >= 10:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {count}")
    assert long == []

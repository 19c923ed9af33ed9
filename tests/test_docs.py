"""The documentation is checked like code: every CLI command and option, and every HTTP
route, is in the reference; every measured figure placeholder resolves from
``bench/results/*.json``; the README stays a front door; the site builds in strict mode.

Fast lane: no photo, no model (the CLI app is walked, the FastAPI app is created but
never started)."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import in_ci

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# typer's own options on the root command, not lookalike's
TYPER_OWN = {"--help", "--install-completion", "--show-completion"}
COMMON_HEADING = "## Options the commands share"


def _hooks():  # docs/hooks.py is loaded by MkDocs from its path, not as a package
    spec = importlib.util.spec_from_file_location("lookalike_docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _commands():
    """(["lookalike", "eval", "verify"], [option strings]) for every command that runs."""
    import typer

    from lookalike.cli import app

    found = []

    def walk(command, path):
        subs = getattr(command, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        opts = [o for p in command.params if p.param_type_name == "option"
                for o in (*p.opts, *p.secondary_opts) if o not in TYPER_OWN]
        if not subs or opts:
            found.append((path, opts))

    walk(typer.main.get_command(app), ["lookalike"])
    return found


def _sections(text):
    """Level-2 sections of a page: heading -> its text."""
    parts = re.split(r"^(## .*)$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def _mentions(text, option):
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text) is not None


def test_every_cli_command_and_option_is_in_the_reference():
    sections = _sections((DOCS / "cli.md").read_text(encoding="utf-8"))
    common = sections.get(COMMON_HEADING, "")
    assert common, f"docs/cli.md has no '{COMMON_HEADING}' section"
    commands = _commands()
    assert len(commands) > 20  # the walk found the app's commands, not an empty group
    missing = []
    for path, opts in commands:
        heading = "## " + " ".join(path)
        if len(path) == 1:  # the root's own options (-v) sit with the common ones
            body = common
        elif heading not in sections:
            missing.append(f"no section '{heading}'")
            continue
        else:
            body = sections[heading]
        missing += [f"{' '.join(path)} {o}" for o in opts
                    if not _mentions(body, o) and not _mentions(common, o)]
    assert not missing, "docs/cli.md lacks: " + "; ".join(missing)


def _app_tree():
    """{command path: its option strings} for every command and group, the root's too."""
    import typer

    from lookalike.cli import app

    tree = {}

    def walk(command, path):
        tree[tuple(path)] = {o for p in command.params if p.param_type_name == "option"
                             for o in (*p.opts, *p.secondary_opts)} | {"--help"}
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return tree


def test_every_command_line_in_the_docs_names_real_options():
    """A `lookalike …` line in a code block (README, docs) names a command that exists and
    only options it takes: an example cannot outlive a renamed flag."""
    tree = _app_tree()
    lines = 0
    wrong = []
    for page in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        in_code = False
        for line in page.read_text(encoding="utf-8").splitlines():
            if line.strip().startswith("```"):
                in_code = not in_code
                continue
            if not in_code or not line.strip().startswith("lookalike "):
                continue
            lines += 1
            words = line.split("#")[0].split()[1:]
            path = []
            while words and tuple([*path, words[0]]) in tree:
                path.append(words.pop(0))
            if not path and words and not words[0].startswith("-"):
                wrong.append(f"{page.name}: no command {words[0]!r}: {line.strip()}")
                continue
            allowed = tree[tuple(path)] | tree[()]  # -v may come first
            for option in re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", " ".join(words)):
                if option not in allowed:
                    wrong.append(f"{page.name}: lookalike {' '.join(path)} has no {option}: {line.strip()}")
    assert lines > 40
    assert not wrong, "\n".join(wrong)


def test_every_http_route_is_in_the_reference():
    from lookalike.serve.app import create_app  # the serve extra is part of the test install
    from lookalike.serve.settings import ServeSettings

    app = create_app(ServeSettings(warm=False))  # built, never started: no library opened
    text = (DOCS / "http.md").read_text(encoding="utf-8")
    routes = [(sorted(getattr(r, "methods", None) or {"GET"} - {"HEAD"}), r.path) for r in app.routes]
    assert any(path == "/v1/search" for _, path in routes)
    missing = []
    for methods, path in routes:
        for method in methods:
            if method == "HEAD":
                continue
            if not re.search(rf"`{method} {re.escape(path)}`", text):
                missing.append(f"{method} {path}")
    assert not missing, "docs/http.md lacks the routes: " + ", ".join(missing)


def test_the_readme_is_a_front_door():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme and "make test" in readme
    lines = readme.count("\n")
    assert lines <= 300, f"README.md has {lines} lines; the reference belongs in docs/"
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / link).is_file(), f"README links to {link}, which does not exist"


def test_every_repository_path_the_docs_name_exists():
    """`lookalike/…`, `tests/…`, `bench/…` in backticks: a moved module leaves no stale path."""
    stale = []
    for page in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        for path in re.findall(r"`((?:lookalike|tests|bench|docs)/[\w./-]+)`", text):
            if "NAME" not in path and not (ROOT / path).exists():
                stale.append(f"{page.name}: {path}")
    assert not stale, "the docs name paths that do not exist: " + ", ".join(stale)


def test_every_figure_placeholder_resolves():
    hooks = _hooks()
    seen = 0
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for match in hooks.PLACEHOLDER.finditer(text):
            seen += 1
            try:
                hooks.render(match.group(1))
            except hooks.FigureError as exc:
                pytest.fail(f"{page.name}: {exc}")
    assert seen > 50  # the figures are placeholders, not typed numbers


def test_a_placeholder_that_names_nothing_fails():
    hooks = _hooks()
    assert hooks.render('figure("search", "k")') == "5"
    accuracy = json.loads((ROOT / "bench" / "results" / "accuracy.json").read_text())
    share = accuracy["stacks"]["sface"]["verify"]["cv_accuracy"]  # whatever the last run measured
    assert hooks.render('pct("accuracy", "stacks.sface.verify.cv_accuracy", 2)') == f"{100 * share:.2f} %"
    search = json.loads((ROOT / "bench" / "results" / "search.json").read_text())
    ours = next(r for r in search["results"]
                if (r["stack"], r["queries"], r["method"]) == ("sface", "lfw (250 px)", "lookalike"))
    assert hooks.render(  # a row picked by its fields, whatever the last run measured
        'figure("search", "results[stack=sface,queries=lfw (250 px),method=lookalike].p50_ms", ".0f")') \
        == f"{ours['p50_ms']:.0f}"
    for bad in ('figure("search", "no.such.path")', 'figure("nosuchfile", "k")',
                'figure("search", "results[stack=sface].p50_ms")',  # 10 rows match, not 1
                '__import__("os").system("true")', 'figure(open("x"), "k")'):
        with pytest.raises(hooks.FigureError):
            hooks.render(bad)


def test_the_docs_build_in_strict_mode(tmp_path):
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or shutil.which("mkdocs")
    if mkdocs is None:
        if in_ci():
            pytest.fail("mkdocs is not installed (the `docs` extra); CI must build the docs")
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    run = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
                         cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-4000:]
    assert (tmp_path / "site" / "cli" / "index.html").is_file()

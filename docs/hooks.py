"""MkDocs hook: measured figures come from ``bench/results/*.json``, never typed by hand.

A page writes a placeholder where a number goes, and the build puts the number there:

    {{ figure("search", "results[stack=sface,queries=lfw (250 px),method=lookalike].p50_ms", ".0f") }}
    {{ pct("accuracy", "stacks.sface.verify.cv_accuracy", 2) }}       -> 99.14 %
    {{ machine("search") }}                           -> 2026-12-01 21:16 UTC, AMD EPYC, 2 cores, 24 GiB
    {{ table("index", "rows", ["data", "n", "key", "p50_ms"]) }}       -> a whole Markdown table

A path walks the JSON: ``a.b`` for keys, ``rows.0`` for a list index, and
``rows[k=v,k2=v2]`` for the one item of a list whose fields have those values (so a
table cell names its row by what it is, not by where it happens to sit), ``[a.b]`` for a
key that holds a dot. A path that
does not resolve stops the build (``FigureError``); ``tests/test_docs.py`` resolves every
placeholder of every page without building.

Only the functions in ``FUNCTIONS`` can be called, with literal arguments (``ast``, no eval);
``{{ "{{" }}`` writes a literal ``{{``.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent.parent / "bench" / "results"
PLACEHOLDER = re.compile(r"\{\{\s*(.+?)\s*\}\}")
_SEGMENT = re.compile(r"\[([^\]]*)\]|([^.\[\]]+)")


class FigureError(ValueError):
    """A placeholder names a file, path or function that is not there."""


@cache
def _load(name: str) -> Any:  # noqa: ANN401 - JSON of any shape
    path = RESULTS / f"{name}.json"
    if not path.is_file():
        raise FigureError(f"bench/results/{name}.json: no such results file")
    return json.loads(path.read_text(encoding="utf-8"))


def lookup(name: str, path: str) -> Any:  # noqa: ANN401 - JSON of any shape
    """The value at ``path`` in ``bench/results/<name>.json``."""
    node = _load(name)
    for match in _SEGMENT.finditer(path):
        selector, key = match.groups()
        if selector is not None and "=" not in selector:
            key, selector = selector, None  # [etcd.data]: a key that holds a dot
        if selector is not None:
            # "k=v,k2=v2"; a value may hold a comma ("key=IVF1024,PQ256") when no "=" follows it
            wanted = dict(part.split("=", 1) for part in re.split(r",(?=[^,=]+=)", selector))
            if not isinstance(node, list):
                raise FigureError(f"{name}.json: {path}: [{selector}] applied to a non-list")
            hits = [item for item in node if isinstance(item, dict)
                    and all(str(item.get(k)) == v for k, v in wanted.items())]
            if len(hits) != 1:
                raise FigureError(f"{name}.json: {path}: [{selector}] matches {len(hits)} items, not 1")
            node = hits[0]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        elif isinstance(node, dict) and key in node:
            node = node[key]
        else:
            raise FigureError(f"{name}.json: {path}: no {key!r} there")
    return node


def _format(value: Any, spec: str = "", scale: float = 1) -> str:  # noqa: ANN401 - JSON scalar
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, (int, float)):
        return str(value)
    value = value * scale
    return format(value, spec) if spec else str(value)


def figure(name: str, path: str, spec: str = "", scale: float = 1) -> str:
    """One number (``spec`` as in ``format()``, e.g. ``".1f"`` or ``",.0f"``; ``scale`` first
    multiplies it, e.g. 1e-6 for bytes to MB)."""
    return _format(lookup(name, path), spec, scale)


def ratio(name: str, path_a: str, path_b: str, spec: str = "", scale: float = 1) -> str:
    """``a / b`` of two values of one file (e.g. photos / seconds)."""
    return _format(lookup(name, path_a) / lookup(name, path_b), spec, scale)


def diff(name: str, path_a: str, path_b: str, spec: str = "", scale: float = 1) -> str:
    """``a - b`` of two values of one file (e.g. wall time minus inner time)."""
    return _format(lookup(name, path_a) - lookup(name, path_b), spec, scale)


def count(name: str, path: str) -> str:
    """How many items a list holds (e.g. the invariants a run found broken)."""
    return str(len(lookup(name, path)))


def pct(name: str, path: str, digits: int = 1) -> str:
    """A share (0.9914) as a percentage ("99.14 %")."""
    return f"{lookup(name, path) * 100:.{digits}f} %"


def machine(name: str, path: str = "machine") -> str:
    """When and where a results file (or a part with its own ``machine``) was measured."""
    m = lookup(name, path)
    engine = f", {m['runtime']}" if "runtime" in m else ""  # the engine, recorded since 2026-12-05
    when = m["date"]
    if "started" in m and "finished" in m:  # recorded since 2026-12-06: the run's span and load
        load = m.get("load_average_1m", {})
        # the 1-minute load average as the run began still holds the minute before it
        when = (f"{m['started']} to {m['finished'][-9:]} (1-minute load average {load.get('start', '?')} as it "
                f"began, {load.get('end', '?')} as it ended)")
    return f"{when}, {m['cpu']}, {m['cores']} cores, {round(m['memory_mib'] / 1024)} GiB{engine}"


def table(name: str, path: str, columns: list[str], headers: list[str] | None = None,
          specs: dict[str, str] | None = None) -> str:
    """A Markdown table of a list of objects, one row each, ``columns`` their fields."""
    rows = lookup(name, path)
    if not isinstance(rows, list):
        raise FigureError(f"{name}.json: {path}: not a list")
    specs = specs or {}
    head = headers or columns
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for row in rows:
        lines.append("| " + " | ".join(_format(row.get(c), specs.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


FUNCTIONS: dict[str, Callable[..., str]] = {
    "figure": figure, "pct": pct, "ratio": ratio, "diff": diff, "count": count, "machine": machine, "table": table}


def render(expression: str) -> str:
    """The text for one placeholder's inside, e.g. ``figure("search", "k")``."""
    try:
        call = ast.parse(expression, mode="eval").body
    except SyntaxError as exc:
        raise FigureError(f"{{{{ {expression} }}}}: not a call ({exc.msg})") from None
    if isinstance(call, ast.Constant) and isinstance(call.value, str):
        return call.value  # {{ "{{" }}: how a page shows a placeholder without filling it in
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in FUNCTIONS):
        raise FigureError(f"{{{{ {expression} }}}}: only {', '.join(FUNCTIONS)} can be called")
    try:
        args = [ast.literal_eval(a) for a in call.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
    except ValueError:
        raise FigureError(f"{{{{ {expression} }}}}: arguments must be literals") from None
    return FUNCTIONS[call.func.id](*args, **kwargs)


def substitute(markdown: str) -> str:
    """Every placeholder of a page replaced by its figure (``FigureError`` on the first that fails)."""
    return PLACEHOLDER.sub(lambda m: render(m.group(1)), markdown)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:  # noqa: ANN401 - MkDocs' hook signature
    from mkdocs.exceptions import PluginError

    try:
        return substitute(markdown)
    except FigureError as exc:
        raise PluginError(f"{page.file.src_uri}: {exc}") from None

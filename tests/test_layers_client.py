"""The client's edges, read from the source with ``ast``: nothing outside ``_client.py``
touches a private member of a client, and the client and ``Generation`` are in no import
cycle (imports under ``TYPE_CHECKING`` and inside functions count)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "akool_async"
CLIENT_NAMES = {"client", "_client"}  # how the package names a client it holds
WATCHED = ("akool_async._client", "akool_async._orchestrator")


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(path, root): path for path in sorted(root.rglob("*.py"))}


def private_client_uses(source: str) -> Iterator[tuple[int, str]]:
    """``(line, text)`` of each ``<client>._name`` (``client`` or ``_client``, bare or as
    an attribute: ``runner.client._x``, ``self._client._x``); dunders are not private."""
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
            continue
        if node.attr.startswith("__") and node.attr.endswith("__"):
            continue
        owner = node.value
        name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", None)
        if name in CLIENT_NAMES:
            yield node.lineno, ast.unparse(node)


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules ``name`` imports, wherever the import statement is."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:  # ``from . import _protocol``: a module itself
                child = f"{base}.{alias.name}"
                found.add(child if child in known else base)
    return found & known


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    found = modules(root)
    return {name: imports_of(name, path, set(found)) for name, path in found.items()}


def cycle_through(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """A shortest import path from ``start`` back to itself, or None."""
    paths = {start: [start]}
    queue = [start]
    while queue:
        current = queue.pop(0)
        for target in sorted(graph.get(current, ())):
            if target == start:
                return [*paths[current], start]
            if target not in paths:
                paths[target] = [*paths[current], target]
                queue.append(target)
    return None


def test_no_module_but_the_client_touches_a_private_client_member() -> None:
    """Workflows (``Generation``, bulk, the CLI) use the client's public API only."""
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {text}"
        for path in modules().values()
        if path != PACKAGE / "_client.py"
        for line, text in private_client_uses(path.read_text())
    ]
    assert not found, "\n".join(found)


def test_the_client_and_generation_are_in_no_import_cycle() -> None:
    """``_client`` makes ``Generation``s, ``Generation`` drives a ``WorkflowClient``:
    neither reaches back to the other, even for type checking."""
    graph = import_graph()
    assert "akool_async._orchestrator" in graph["akool_async._client"]  # the graph is read
    cycles = [cycle_through(graph, module) for module in WATCHED]
    assert cycles == [None, None], [" -> ".join(c) for c in cycles if c]


def test_the_checks_see_what_they_look_for(tmp_path: Path) -> None:
    """Both checks find the shapes they forbid (so a green run means something)."""
    uses = private_client_uses(
        "runner.client._watch_set()\nself._client._background.spawn(f)\n"
        "client._x = 1\nself._client.watch()\nclient.__class__\nother._y\n"
    )
    assert sorted(line for line, _ in uses) == [1, 2, 3]
    package = tmp_path / "akool_async"
    package.mkdir()
    (package / "__init__.py").write_text("from ._client import C\n")
    (package / "_client.py").write_text("from . import _orchestrator\n")
    (package / "_orchestrator.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ._client import C\n"
    )
    graph = import_graph(package)
    assert cycle_through(graph, "akool_async._client") == [
        "akool_async._client", "akool_async._orchestrator", "akool_async._client",
    ]  # fmt: skip
    assert cycle_through(graph, "akool_async") is None

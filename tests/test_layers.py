"""The package's layers, read from its import graph (``ast``, no import is run)."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

import attrs

import akool_async

PACKAGE = "akool_async"
ROOT = Path(akool_async.__file__).parent

# What the emulator may import (issue 11): the models, errors and settings values (data
# only), and the wire protocol (pure: request models, codec, envelope reading, webhook
# crypto). Nothing that does I/O, nothing of the client.
DATA = {"_models", "_exceptions", "_api_errors", "_arguments", "_poll_policy", "_defaults",
        "_clock", "_gate"}  # fmt: skip
WIRE = {"_requests", "_converter", "_protocol", "_webhook_crypto"}
EMULATOR_MAY_IMPORT = {f"{PACKAGE}.{name}" for name in DATA | WIRE}
# The one way up: ``Emulator.client()`` builds an ``AkoolClient`` wired to the emulator.
# Its return type needs the client's name, and the call imports it: never at load time.
EMULATOR_CONVENIENCE = {
    ("akool_async.emulator._emulator", "akool_async._client", "typing"),
    ("akool_async.emulator._emulator", "akool_async._client", "deferred"),
    ("akool_async.emulator._emulator", "akool_async._retry", "deferred"),
}
# The modules the errors/edges step of issue 11 changed: no import cycle among them, and
# none on any cycle but ``_client`` (its cycle with ``_orchestrator`` goes with step 1 of
# the issue, the public watch API).
TOUCHED = {
    f"{PACKAGE}.{name}"
    for name in (
        "_exceptions", "_api_errors", "_redaction", "_requester", "_retry", "_transport",
        "_transport_choice", "_save_images", "_follow", "_follow_table", "_journal_protocol",
        "_models", "_webhook_crypto", "_polling", "_auth", "_arguments", "_protocol",
        "_requests", "_client", "_client_waiting", "_client_downloads", "_client_lifecycle",
        "webhook", "bulk._input", "_cli._bulk", "_cli._generate", "emulator._emulator",
    )
}  # fmt: skip
CLIENT_NAMES = {"client", "_client"}


@attrs.frozen
class Edge:
    source: str
    target: str
    kind: str  # "runtime" (at load), "typing" (under TYPE_CHECKING), "deferred" (in a body)


def module_name(path: Path) -> str:
    parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


PACKAGES = {module_name(path) for path in ROOT.rglob("__init__.py")}


def sources() -> dict[str, ast.Module]:
    return {
        module_name(path): ast.parse(path.read_text(encoding="utf-8"), str(path))
        for path in sorted(ROOT.rglob("*.py"))
    }


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(
    nodes: Iterable[ast.AST], kind: str
) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, kind
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _imports(ast.iter_child_nodes(node), "deferred")
        elif isinstance(node, ast.If) and _is_type_checking(node):
            yield from _imports(node.body, "typing" if kind == "runtime" else kind)
            yield from _imports(node.orelse, kind)
        else:
            yield from _imports(ast.iter_child_nodes(node), kind)


def _targets(source: str, node: ast.Import | ast.ImportFrom, modules: set[str]) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in modules}
    if node.level:
        package = source if source in PACKAGES else source.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module or ""
    # ``from . import _protocol`` imports a module; ``from ._models import X`` a name.
    found = {f"{base}.{alias.name}" for alias in node.names} & modules
    return found or ({base} & modules)


def import_graph(trees: dict[str, ast.Module]) -> set[Edge]:
    modules = set(trees)
    return {
        Edge(source, target, kind)
        for source, tree in trees.items()
        for node, kind in _imports(tree.body, "runtime")
        for target in _targets(source, node, modules)
        if target != source
    }


def cycles(edges: set[Edge]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
        graph.setdefault(edge.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


SOURCES = sources()
GRAPH = import_graph(SOURCES)


def test_the_graph_sees_every_kind_of_import() -> None:
    """The graph holds load-time, TYPE_CHECKING and in-function imports, relative ones
    resolved (a check over an empty or partial graph would pass for nothing)."""
    edges = {(e.source.removeprefix("akool_async."), e.target.removeprefix("akool_async."),
              e.kind) for e in GRAPH}  # fmt: skip
    assert ("_client", "_orchestrator", "runtime") in edges
    assert ("testing", "_client", "typing") in edges
    assert ("testing", "emulator", "deferred") in edges
    assert ("_client", "_protocol", "runtime") in edges  # from . import _protocol as api
    assert ("emulator._app", "emulator._validate", "runtime") in edges  # from . import _validate
    assert ("emulator", "emulator._emulator", "runtime") in edges  # a package's relative import
    assert len({e.source for e in GRAPH}) > 50


def test_the_errors_import_nothing_from_the_package() -> None:
    """Every layer raises the errors, so the errors modules import no other module: the
    tree imports nothing, the business-code classes only the tree."""
    assert {e for e in GRAPH if e.source == "akool_async._exceptions"} == set()
    assert {e.target for e in GRAPH if e.source == "akool_async._api_errors"} == {
        "akool_async._exceptions"
    }


def test_the_emulator_depends_only_on_models_and_the_wire_protocol() -> None:
    """The emulator's modules import only data and wire-protocol modules (and each other),
    which in turn import nothing else; ``Emulator.client()`` is the one listed way up."""
    outside = {
        e
        for e in GRAPH
        if e.source.startswith("akool_async.emulator")
        and not e.target.startswith("akool_async.emulator")
    }
    assert {e.target for e in outside} - EMULATOR_MAY_IMPORT == {
        "akool_async._client",
        "akool_async._retry",
    }
    assert {
        (e.source, e.target, e.kind) for e in outside if e.target not in EMULATOR_MAY_IMPORT
    } == (EMULATOR_CONVENIENCE)
    below = {e.target for e in GRAPH if e.source in EMULATOR_MAY_IMPORT}
    assert below <= EMULATOR_MAY_IMPORT


def test_auth_does_not_import_the_protocol() -> None:
    """Credentials sit below the wire protocol: ``_auth`` never imports ``_protocol``."""
    assert not {
        e for e in GRAPH if (e.source, e.target) == ("akool_async._auth", "akool_async._protocol")
    }
    assert ("akool_async._auth", "akool_async._arguments") in {(e.source, e.target) for e in GRAPH}


def test_no_import_cycle_among_the_modules_this_step_touched() -> None:
    """No import cycle (TYPE_CHECKING and in-function imports included) among the modules
    the errors/edges step changed, and none of them but ``_client`` on any cycle."""
    assert set(SOURCES) >= TOUCHED
    among = {e for e in GRAPH if e.source in TOUCHED and e.target in TOUCHED}
    assert cycles(among) == []
    on_cycles = {module for component in cycles(GRAPH) for module in component}
    assert on_cycles & TOUCHED <= {"akool_async._client"}


def test_cycles_finds_a_cycle() -> None:
    """The cycle finder reports a loop, and only the modules on it."""
    edges = {Edge("a", "b", "runtime"), Edge("b", "c", "typing"), Edge("c", "a", "deferred")}
    edges |= {Edge("c", "d", "runtime")}
    assert cycles(edges) == [["a", "b", "c"]]
    assert cycles({Edge("a", "b", "runtime")}) == []


def test_the_import_graph_has_no_cycle() -> None:
    """No import cycle anywhere in the package, TYPE_CHECKING imports included."""
    assert cycles(GRAPH) == []


def private_client_uses(module: str, tree: ast.Module) -> list[str]:
    """``client._x``, ``self.client._x``, ``self._client._x`` (dunders aside) in ``tree``."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
            continue
        owner = node.value
        name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", None)
        if name in CLIENT_NAMES and not node.attr.startswith("__"):
            found.append(f"{module}:{node.lineno} {ast.unparse(node)}")
    return sorted(found)


def test_private_client_uses_are_found() -> None:
    """The check finds a private member reached through a client, and nothing else."""
    code = (
        "async def f(self, client, other):\n"
        "    client._a()\n    self._client._b\n    self.client._c.d()\n"
        "    client.public\n    client.__class__\n    other._e\n    self._f\n"
    )
    assert private_client_uses("m", ast.parse(code)) == [
        "m:2 client._a",
        "m:3 self._client._b",
        "m:4 self.client._c",
    ]


def test_no_private_client_member_is_used_outside_the_client() -> None:
    """Nothing outside ``_client`` touches a private member of the client."""
    uses = [
        use
        for module, tree in SOURCES.items()
        if module != "akool_async._client"
        for use in private_client_uses(module, tree)
    ]
    assert uses == []


# The layers of ARCHITECTURE.md, bottom up: a module imports only from its own layer and
# those before it. A new module joins a layer here (the test names any that has none).
LAYERS: dict[str, set[str]] = {
    "data": {"_models", "_exceptions", "_api_errors", "_arguments", "_poll_policy",
             "_version", "_redaction", "_defaults", "_clock", "_gate"},
    "wire": {"_requests", "_converter", "_protocol", "_retry", "_webhook_crypto", "_grid",
             "_imagecheck"},
    "decisions": {"_poll_planner", "_durations", "_callbacks", "_gcra", "_follow",
                  "_follow_states", "_follow_table", "_follow_events", "_follow_items",
                  "_journal_protocol", "_closing", "_redis_lua"},
    "io": {"_auth", "_transport", "_aiohttp", "_transport_choice", "_shards",
           "_requester", "_ratelimit", "_polling", "_watchset", "_download",
           "_save_images", "_background", "_shared_budget", "redis_budget"},
    "webhook": {"webhook"},
    "generation": {"_orchestrator", "_workflow_client", "_follow_io"},
    "client": {"_client", "_client_lifecycle", "_client_waiting", "_client_downloads",
               "_settings"},
    "bulk": {"bulk"},
    "workers": {"workers"},
    "emulator": {"emulator"},
    "cli": {"_cli", "__main__", "testing", ""},
}  # fmt: skip


def layer_of(module: str) -> str | None:
    """The layer of ``module`` (a subpackage's modules share the subpackage's)."""
    name = module.removeprefix(PACKAGE).removeprefix(".")
    top = name.split(".")[0]
    return next((layer for layer, names in LAYERS.items() if top in names), None)


def test_every_module_has_a_layer() -> None:
    assert [module for module in SOURCES if layer_of(module) is None] == []


def upward(edges: Iterable[Edge]) -> set[Edge]:
    """The edges from a module to a layer above its own."""
    rank = {layer: index for index, layer in enumerate(LAYERS)}
    return {
        e for e in edges if rank[layer_of(e.target) or "cli"] > rank[layer_of(e.source) or "cli"]
    }


def test_layers_import_only_from_below() -> None:
    """No module imports from a layer above its own, TYPE_CHECKING and deferred imports
    included (``Emulator.client()`` goes down: the emulator sits above the client)."""
    assert upward(GRAPH) == set()
    wrong = Edge("akool_async._models", "akool_async.bulk._item", "typing")
    assert upward({wrong, Edge("akool_async.bulk._item", "akool_async._models", "runtime")}) == {
        wrong
    }


# Module size (issue 11: one job each, 450 lines at most); ``bulk/_item.py`` is split.
MAX_LINES = 450
OVERSIZED_FOR_NOW: set[str] = set()


def line_counts() -> dict[str, int]:
    return {
        module_name(path): len(path.read_text(encoding="utf-8").splitlines())
        for path in ROOT.rglob("*.py")
    }


def test_no_module_is_over_450_lines() -> None:
    """Every module has one job and at most 450 lines (``OVERSIZED_FOR_NOW`` aside)."""
    counts = line_counts()
    assert set(counts) == set(SOURCES)
    assert {m: n for m, n in counts.items() if n > MAX_LINES}.keys() <= OVERSIZED_FOR_NOW
    assert set(SOURCES) >= OVERSIZED_FOR_NOW


# Pure decisions: what the decision modules may import besides the package's data, wire
# and decision modules. No anyio, httpx, time, clock or I/O: ``now`` is passed in.
PURE_LIBRARIES = {"__future__", "attrs", "collections", "dataclasses", "enum", "functools",
                  "heapq", "itertools", "math", "statistics", "typing", "bisect"}  # fmt: skip


def impure_imports(module: str, tree: ast.Module) -> list[str]:
    """The imports of ``module`` that are neither pure libraries nor package modules of
    the data, wire or decision layers (``_clock`` excluded: it reads the time)."""
    allowed_layers = {"data", "wire", "decisions"}
    found = []
    for node, _ in _imports(tree.body, "runtime"):
        if isinstance(node, ast.ImportFrom) and node.level:
            targets = _targets(module, node, set(SOURCES)) or {node.module or "?"}
        else:
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            targets = set(names)
        for target in sorted(targets):
            if target.startswith(f"{PACKAGE}."):
                if target == f"{PACKAGE}._clock" or layer_of(target) not in allowed_layers:
                    found.append(f"{module} imports {target}")
            elif target.split(".")[0] not in PURE_LIBRARIES:
                found.append(f"{module} imports {target}")
    return found


def test_impure_imports_are_found() -> None:
    """The purity check names anyio, httpx, time, the clock and I/O layers, nothing else."""
    code = (
        "import anyio\nimport time\nfrom httpx import Client\nfrom . import _clock\n"
        "from ._polling import X\nfrom ._models import ImageJob\nimport math\n"
        "from collections.abc import Mapping\n"
        "def f():\n    import sqlite3\n"
    )
    assert impure_imports("akool_async._follow", ast.parse(code)) == [
        "akool_async._follow imports anyio",
        "akool_async._follow imports time",
        "akool_async._follow imports httpx",
        "akool_async._follow imports akool_async._clock",
        "akool_async._follow imports akool_async._polling",
        "akool_async._follow imports sqlite3",
    ]


def test_pure_decision_modules_do_no_io() -> None:
    """The decision modules (poll planner, GCRA, follow machine, journal protocol...)
    import no anyio, httpx, time, clock or I/O module."""
    decisions = [m for m in SOURCES if layer_of(m) == "decisions"]
    assert len(decisions) >= 10
    found = [line for m in decisions for line in impure_imports(m, SOURCES[m])]
    assert found == []


# The clock (issue 11): only ``_clock`` reads the time (the bulk modules too, since the
# bulk runner drives the follow machine).
READS_TIME_FOR_NOW: set[str] = set()


def reads_time(tree: ast.Module) -> bool:
    """Whether ``tree`` imports ``time`` or reads ``datetime.now``-like wall time."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name == "time" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.module == "time" and not node.level:
            return True
        if isinstance(node, ast.Attribute) and node.attr in {"now", "utcnow", "today"}:
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in {"datetime", "date"}:
                return True
    return False


def test_only_the_clock_reads_the_time() -> None:
    """Time comes from ``_clock`` (monotonic and wall readings of one injectable object):
    no other module imports ``time`` or asks ``datetime`` for now."""
    assert reads_time(ast.parse("import time"))
    assert reads_time(ast.parse("datetime.now()"))
    assert not reads_time(ast.parse("from . import time_scale\nnow()"))
    readers = {m for m, tree in SOURCES.items() if reads_time(tree)}
    assert readers - READS_TIME_FOR_NOW == {"akool_async._clock"}


# The follow-up workflow (issue 11): pressing buttons on finished images is the follow
# machine's, once. Outside it, only the client's own press endpoint builds a press, and
# only the pure rules and the wire layer (and the emulator, the server side) read which
# buttons a job offers or used.
PRESS_BUILDERS = {"akool_async._follow", "akool_async._client", "akool_async._requests"}
BUTTON_READERS = PRESS_BUILDERS | {
    "akool_async._follow_items", "akool_async._models", "akool_async._converter",
    "akool_async._grid",
}  # fmt: skip


def _uses(tree: ast.Module) -> tuple[bool, bool]:
    """Whether ``tree`` builds a button press, and whether it reads a job's buttons."""
    builds = reads = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            builds |= isinstance(func, ast.Name) and func.id == "ButtonRequest"
            builds |= isinstance(func, ast.Attribute) and func.attr == "for_parent"
        reads |= isinstance(node, ast.Attribute) and node.attr == "used_buttons"
        reads |= isinstance(node, ast.Name | ast.Attribute) and (
            getattr(node, "id", None) == "check_button_available"
            or getattr(node, "attr", None) == "check_button_available"
        )
    return builds, reads


def test_the_follow_up_workflow_is_implemented_once() -> None:
    assert _uses(ast.parse("ButtonRequest(job_id='j', button=b)")) == (True, False)
    assert _uses(ast.parse("x = parent.used_buttons")) == (False, True)
    builders = {m for m, tree in SOURCES.items() if _uses(tree)[0]}
    readers = {m for m, tree in SOURCES.items() if _uses(tree)[1]}
    emulator = {m for m in readers if m.startswith("akool_async.emulator.")}
    assert builders <= PRESS_BUILDERS
    assert readers - emulator <= BUTTON_READERS

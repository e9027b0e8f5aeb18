"""The package's public face: a curated, sorted ``__all__`` that resolves, and type info."""

from __future__ import annotations

from pathlib import Path

import akool_async


def test_all_is_sorted_and_complete() -> None:
    """``__all__`` is sorted (constants, classes, then functions), unique, and resolves."""
    names = akool_async.__all__

    def group(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert names == sorted(names, key=group)
    assert len(set(names)) == len(names)
    for name in names:
        assert hasattr(akool_async, name), name


def test_no_private_module_leaks_public_names() -> None:
    """Every public class defined in the package is exported from the top level."""
    exported = set(akool_async.__all__)
    for name in dir(akool_async):
        value = getattr(akool_async, name)
        if (
            isinstance(value, type)
            and value.__module__.startswith("akool_async")
            and not name.startswith("_")
        ):
            assert name in exported, name


def test_types_in_public_signatures_are_exported() -> None:
    """Every akool_async type named in a public signature can be imported from the top."""
    import inspect
    import typing

    exported = {getattr(akool_async, name) for name in akool_async.__all__}
    missing = set()
    for name in akool_async.__all__:
        value = getattr(akool_async, name)
        callables = [value] if callable(value) else []
        if isinstance(value, type):
            methods = inspect.getmembers(value, inspect.isfunction)
            callables = [value.__init__, *(m for n, m in methods if not n.startswith("_"))]
        for function in callables:
            try:
                hints = typing.get_type_hints(function)
            except Exception:
                continue
            for hint in hints.values():
                for part in _flatten(hint):
                    module = getattr(part, "__module__", "")
                    is_type = isinstance(part, type)
                    if is_type and module.startswith("akool_async") and part not in exported:
                        missing.add(f"{part.__qualname__} (in {name})")
    assert not missing


def _flatten(hint: object) -> list[object]:
    import typing

    args = typing.get_args(hint)
    return [hint, *(part for arg in args for part in _flatten(arg))]


def test_ships_type_information() -> None:
    """The package carries a py.typed marker."""
    assert (Path(akool_async.__file__).parent / "py.typed").exists()

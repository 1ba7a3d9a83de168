"""One exception tree: every exception class of the packages derives from ``GatewayError``, and the
drawing in ``mappings/problems.py`` names exactly these classes under their real parents and modules."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest

import mappings.problems
from mappings.problems import GatewayError

PACKAGES = ("adapters", "mappings", "gateway", "conformance")
# modules that start or need what a plain import must not (a server, a browser): none define exceptions
SKIP = re.compile(r"\.(__main__|migrations\.env|migrations\.versions\..*)$")


def _project_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for package in PACKAGES:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, package + "."):
            if SKIP.search(info.name):
                continue
            module = importlib.import_module(info.name)
            for _name, obj in vars(module).items():
                if (
                    inspect.isclass(obj)
                    and issubclass(obj, BaseException)
                    and obj.__module__ == module.__name__
                ):
                    found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


def _drawing() -> dict[str, tuple[str | None, str]]:
    """name -> (parent name, module path as drawn) from the docstring's tree."""
    doc = mappings.problems.__doc__ or ""
    lines = doc.split("::\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    drawn: dict[str, tuple[str | None, str]] = {}
    stack: list[tuple[int, str]] = []
    for line in lines:
        m = re.match(r"^(?P<indent>[ │├└─]*)(?P<name>\w+)\s+(?P<where>[\w/.]+)", line)
        assert m, line
        depth = len(m["indent"])
        while stack and stack[-1][0] >= depth:
            stack.pop()
        drawn[m["name"]] = (stack[-1][1] if stack else None, m["where"].rstrip(":"))
        stack.append((depth, m["name"]))
    return drawn


@pytest.fixture(scope="module")
def classes():
    return _project_exceptions()


def test_every_exception_of_the_packages_is_a_gateway_error(classes):
    assert len(classes) >= 15
    outside = sorted(name for name, cls in classes.items() if not issubclass(cls, GatewayError))
    assert outside == [], "exceptions outside the tree (derive them from GatewayError)"


def test_the_drawing_names_each_exception_once_under_its_parent(classes):
    drawn = _drawing()
    names = [cls.__name__ for cls in classes.values()]
    assert sorted(set(names)) == sorted(names), "two exception classes share a name"
    assert set(drawn) == set(names), "the docstring's tree and the code differ"
    for cls in classes.values():
        parent, where = drawn[cls.__name__]
        project_bases = [b.__name__ for b in cls.__bases__ if b.__name__ in drawn]
        assert project_bases == ([parent] if parent else []), cls
        path = cls.__module__.replace(".", "/")
        assert path == where.removesuffix(".py") or path == where + "/__init__", (cls, where)

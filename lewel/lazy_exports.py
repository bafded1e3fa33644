"""Names a package offers from its submodules, imported on first use (PEP 562's module ``__getattr__``): so that
importing the package, or one of its light submodules, does not load torch until a name that needs it is read.
Used by ``lewel`` and ``lewel.maps``."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, sources: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` (its ``__name__``) offering each name of ``sources`` (public name
    -> the relative submodule that defines it, e.g. ``".inference"``): the first read of a name imports its
    submodule and keeps the value in the package, so later reads are plain attribute lookups."""

    def __getattr__(name: str) -> Any:
        source = sources.get(name)
        if source is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(source, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(sources))

    return __getattr__, __dir__

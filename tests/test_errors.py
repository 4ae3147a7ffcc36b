"""Every exception Pingura declares is a :class:`~shared.errors.PinguraError`, so a caller can
tell Pingura's own refusals from a library's failure with one ``except``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import services
import shared
from shared.errors import PinguraError


def _modules():
    for package in (services, shared):
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
            yield importlib.import_module(info.name)


def test_every_exception_class_declared_in_services_and_shared_derives_from_pingura_error():
    declared = {
        f"{cls.__module__}.{cls.__qualname__}": cls
        for module in _modules()
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, BaseException) and cls.__module__ == module.__name__
    }
    assert len(declared) >= 10, sorted(declared)  # the walk found the modules, not an empty tree
    outside = sorted(name for name, cls in declared.items() if not issubclass(cls, PinguraError))
    assert outside == []

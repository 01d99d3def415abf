"""Packages from pyproject's optional extras, imported where they are used: a missing one is
an `Unavailable` that names the extra to install, never an ImportError at import time.

  baselines  pyrnnoise, noisereduce: the denoise service's classical models
  eval       pystoi, pesq (speech metrics) and the baselines the benchmarks compare against
"""

from __future__ import annotations

import importlib
from types import ModuleType

from services.common.errors import Unavailable


def optional_import(module: str, extra: str) -> ModuleType:
    """`importlib.import_module(module)`, or Unavailable("... pip install 'talking-head[extra]'")."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        top = module.split(".")[0]
        if e.name is None or e.name.split(".")[0] != top:
            raise  # the package is there but one of its own dependencies is broken
        raise Unavailable(f"{top} is not installed: pip install 'talking-head[{extra}]'") from e


"""A package from an optional extra that is not installed is a clear Unavailable naming the
extra; a broken dependency inside an installed package is not disguised as one."""

from __future__ import annotations

import pytest

from services.common.errors import Unavailable
from services.common.extras import optional_import


def test_installed_module_is_returned():
    assert optional_import("json.decoder", "eval").__name__ == "json.decoder"


def test_missing_package_names_its_extra():
    with pytest.raises(Unavailable, match=r"talking_head_absent is not installed: pip install 'talking-head\[eval\]'"):
        optional_import("talking_head_absent.sub", "eval")


def test_missing_dependency_of_an_installed_package_is_reraised(tmp_path, monkeypatch):
    (tmp_path / "talking_head_broken").mkdir()
    (tmp_path / "talking_head_broken" / "__init__.py").write_text("import talking_head_absent_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="talking_head_absent_dependency"):
        optional_import("talking_head_broken", "baselines")

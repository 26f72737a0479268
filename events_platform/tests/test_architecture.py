"""The import contract in pyproject.toml (checked by ``lint-imports`` in ``make lint``) covers
every app of the project: an app it does not list would go unchecked."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings


def _contract_layers(config: dict[str, Any]) -> set[str]:
    """Every module named by a layers contract; a line may hold siblings (``a | b``, ``a : b``)
    and an optional layer is written in parentheses."""
    names: set[str] = set()
    for contract in config["contracts"]:
        if contract["type"] == "layers":
            for line in contract["layers"]:
                names |= {name.strip("() ") for name in re.split(r"[|:]", line)}
    return names


def test_every_project_app_is_a_layer_of_the_import_contract() -> None:
    """Each of the project's own apps (webhooks and rfm included, once they land) is a root
    package of import-linter and a layer of its contract, so its imports are checked."""
    # given
    base = Path(settings.BASE_DIR)
    config = tomllib.loads((base / "pyproject.toml").read_text())["tool"]["importlinter"]
    # when
    project_packages = {
        app.name.split(".")[0]
        for app in apps.get_app_configs()
        if Path(app.path).is_relative_to(base / app.name.split(".")[0])
    }
    # then
    assert project_packages >= {"events_platform", "contacts", "rfm", "segments", "webhooks"}
    assert project_packages <= set(config["root_packages"])
    assert project_packages <= _contract_layers(config)

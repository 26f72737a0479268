"""Cards the apps built on contacts add to the contact page (contacts never imports them).

An app registers ``register_contact_panel(name, template=..., context=fn)`` in its
``AppConfig.ready()``; the contact page renders ``template`` with ``panel = fn(contact)`` after
the purchase figures, in the order of registration. ``fn`` must cost a constant number of
queries (the page's query count is pinned) and return ``None`` to show nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .models import Contact

PanelContext = Callable[[Contact], dict[str, Any] | None]
_PANELS: dict[str, tuple[str, PanelContext]] = {}


def register_contact_panel(name: str, *, template: str, context: PanelContext) -> None:
    _PANELS[name] = (template, context)


def contact_panels(contact: Contact) -> list[tuple[str, dict[str, Any]]]:
    """(template, panel context) of each registered card that has something to show."""
    shown = []
    for template, context in _PANELS.values():
        panel = context(contact)
        if panel is not None:
            shown.append((template, panel))
    return shown

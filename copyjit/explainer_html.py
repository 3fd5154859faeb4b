"""`python -m copyjit explain --html OUT.html`: the report as one self-contained page."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from copyjit.explainer import LoopReport


def render(reports: list[LoopReport]) -> str:
    from copyjit.explainer import render as text

    return f"<!doctype html><pre>{text(reports)}</pre>"

"""How the reader asked to see a report: the command line's choices (color, width, the
suppressed findings, where the whole report lives), not the audit's. Every reporter takes
one as its second argument."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class View:
    color: bool = False
    width: int | None = None  # the table's columns (default: the table's own)
    show_suppressed: bool = False  # the table lists suppressed findings too (--show-suppressed)
    details_url: str | None = None  # where the whole report can be read (a CI run's page)


PLAIN = View()

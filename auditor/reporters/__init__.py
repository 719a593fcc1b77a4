"""Output formats. Each module renders a Report to text: `render(report, view) -> str`,
`view` being how the reader asked to see it (auditor.reporters.view). A format's module is
imported when a report is rendered in it, so naming the formats (the command line's
choices) costs nothing."""

from __future__ import annotations

from importlib import import_module

from auditor.reporters.view import PLAIN, View

# Format -> (module, flavour): a module renders one format, or several flavours of one.
_FORMATS = {
    "table": ("table", None),
    "json": ("json_report", None),
    "sarif": ("sarif", None),
    "junit": ("junit", None),
    "markdown": ("markdown", None),
    "github": ("github", None),
    "policyreport": ("policyreport", "policyreport"),
    "openreports": ("policyreport", "openreports"),
}
NAMES = tuple(_FORMATS)


def renderer(fmt: str):
    """The `render(report, view)` of the output format `fmt` (one of NAMES)."""
    module, flavour = _FORMATS[fmt]
    found = import_module(f"auditor.reporters.{module}")
    return found.render if flavour is None else found.render_as(flavour)


def render(fmt: str, report, view: View = PLAIN) -> str:
    """`report` in the output format `fmt` (one of NAMES)."""
    return renderer(fmt)(report, view)

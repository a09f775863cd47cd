"""Jinja2 environment for the templates in ``templates/`` (HTML autoescaped, Markdown not)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from .models import Status

#: Installed, the templates ship inside the package (mcp_bridge_reports/templates); in the
#: repository they are the top-level templates/ directory.
_PACKAGED = Path(__file__).resolve().parent / "templates"
TEMPLATE_DIR = (
    _PACKAGED if _PACKAGED.is_dir() else Path(__file__).resolve().parent.parent / "templates"
)
STATUS_ICON = {Status.PASS: "✅", Status.FAIL: "❌", Status.UNKNOWN: "❔"}


def show(value: Any) -> str:
    """A measured/threshold value for humans: strings bare, everything else as compact JSON."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:.6g}"
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def md_cell(value: Any) -> str:
    """Safe inside a Markdown table cell: no pipes or newlines."""
    return show(value).replace("|", "\\|").replace("\n", " ")


def inline_code(text: str) -> Markup:
    """HTML: escape *text* and turn Markdown-style `spans` into <code> elements."""
    parts = str(text).split("`")
    out = [
        f"<code>{escape(part)}</code>" if i % 2 else str(escape(part))
        for i, part in enumerate(parts)
    ]
    if len(parts) % 2 == 0:  # unbalanced backtick: keep it literal
        out[-1] = "`" + str(escape(parts[-1]))
    return Markup("".join(out))


def icon(status: Status) -> str:
    return STATUS_ICON[status]


def make_env(template_dir: Path = TEMPLATE_DIR) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(template_dir)),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.do"],
    )
    env.filters.update(show=show, md_cell=md_cell, icon=icon, inline_code=inline_code)
    return env


def render(env: Environment, name: str, context: dict[str, Any]) -> str:
    return env.get_template(name).render(**context)

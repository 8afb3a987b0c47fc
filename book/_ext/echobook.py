"""Small Sphinx fixes for the book, loaded through ``_config.yml`` (``sphinx.local_extensions``).

* sphinx-thebe 0.3.1 registers its inline configuration script once per
  ``env-before-read-docs`` event, which Jupyter Book 1.x fires twice, so every
  page declared ``const THEBE_JS_URL`` twice: a JavaScript error on every page.
  Duplicate script entries are dropped here, page by page.
* Wide metric tables (a dozen columns) get a compact style from
  ``book/_static/echobook.css`` so they fit the text column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

STATIC = Path(__file__).resolve().parent.parent / "_static"


def _dedupe_scripts(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[str, str]] = set()
    unique = []
    for js in scripts:
        # the same inline script is registered once with filename None and once with ''
        key = (getattr(js, "filename", None) or "", str(getattr(js, "attributes", {}).get("body", "")))
        if key in seen:
            continue
        seen.add(key)
        unique.append(js)
    context["script_files"] = unique


def _add_static(app: Any) -> None:
    if str(STATIC) not in app.config.html_static_path:
        app.config.html_static_path.append(str(STATIC))


def setup(app: Any) -> dict[str, Any]:
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    app.connect("builder-inited", _add_static)
    app.add_css_file("echobook.css")
    return {"parallel_read_safe": True, "parallel_write_safe": True}

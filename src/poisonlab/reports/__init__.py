"""Reports: read results, compute nothing. JSON, Markdown, plots and self-contained HTML
(:mod:`poisonlab.reports.html`), written atomically."""

from .files import atomic_write_bytes, atomic_write_json, atomic_write_text, to_jsonable
from .html import build_html, read_record, write_html
from .markdown import reproduction_table

__all__ = ["atomic_write_bytes", "atomic_write_json", "atomic_write_text", "build_html", "read_record",
           "reproduction_table", "to_jsonable", "write_html"]

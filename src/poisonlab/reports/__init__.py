"""Reports: read results, compute nothing. JSON, Markdown and plots, written atomically."""

from .files import atomic_write_bytes, atomic_write_json, atomic_write_text, to_jsonable
from .markdown import reproduction_table

__all__ = ["atomic_write_bytes", "atomic_write_json", "atomic_write_text", "reproduction_table",
           "to_jsonable"]

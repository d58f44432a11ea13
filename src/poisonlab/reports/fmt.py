"""How the reports write numbers: percentages, numbers and durations, the same in tables,
headlines and plots.

>>> pct(0.975), pct(0.9975), pct(0.0004), pct(None)
('97.5%', '99.75%', '0.04%', 'n/a')
>>> num(1347), num(0.12345), num(2.4239), seconds(66.2)
('1,347', '0.123', '2.42', '66.2 s')
"""

from __future__ import annotations

import math
from typing import Any


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def pct(v: Any, digits: int = 1) -> str:
    """A fraction as a percentage: one decimal (two below 1% and above 99%, so 0.04% and
    99.96% do not read as 0.0% and 100.0%); "n/a" when missing."""
    if not _finite(v):
        return "n/a"
    d = digits + 1 if (0 < abs(v) < 0.01 or 0.99 < abs(v) < 1) else digits
    return f"{v * 100:.{d}f}%"


def num(v: Any, digits: int = 3) -> str:
    """A number with ``digits`` significant digits (integers as they are, with thousands
    separators); "n/a" when missing."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if not _finite(v):
        return "n/a"
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.{digits}g}"
    return f"{v:.{digits}g}" if abs(v) < 1 else f"{v:,.{max(0, digits - len(str(int(abs(v)))))}f}"


def seconds(v: Any) -> str:
    if not _finite(v):
        return "n/a"
    if v < 1:
        return f"{v * 1000:.0f} ms"
    if v < 120:
        return f"{v:.1f} s"
    return f"{v / 60:.1f} min"

"""How numbers and tables are written on the ketamine page."""

from __future__ import annotations

import numpy as np
import pandas as pd

ROUTE_NAMES = {"iv": "IV", "im": "IM", "sl": "SL", "oral": "oral", "intranasal": "intranasal"}
OUTCOME_NAMES = {
    "peak_map": "peak mean arterial pressure",
    "peak_hr": "peak heart rate",
    "cows": "COWS score",
}


def pct(p: float, digits: int = 0) -> str:
    """Write a probability of an outcome as a percentage.

    >>> pct(0.274)
    '27%'
    """
    return f"{100 * p:.{digits}f}%"


def prob(p: float) -> str:
    """Write a posterior probability: whole percent, one decimal near 0 or 1.

    >>> prob(0.5), prob(0.997), prob(0.9999), prob(0.002), prob(0.0001)
    ('50%', '99.7%', '>99.9%', '0.2%', '<0.1%')
    """
    if p > 0.995:
        return f"{100 * p:.1f}%" if p < 0.9995 else ">99.9%"
    if p < 0.005:
        return f"{100 * p:.1f}%" if p >= 0.0005 else "<0.1%"
    return f"{100 * p:.0f}%"


def sig(x: float, n: int = 2) -> str:
    """Write ``x`` to ``n`` significant figures, without scientific notation.

    >>> sig(1.4321), sig(0.0123), sig(123.4)
    ('1.4', '0.012', '123')
    """
    if x == 0 or not np.isfinite(x):
        return f"{x:g}"
    digits = max(n - 1 - int(np.floor(np.log10(abs(x)))), 0)
    return f"{x:.{digits}f}"


def num(x: float, d: int = 2) -> str:
    """Write ``x`` with ``d`` decimals, without a minus sign on a rounded zero.

    >>> num(1.234), num(-0.001)
    ('1.23', '0.00')
    """
    s = f"{x:.{d}f}"
    return "0" + s[2:] if s.startswith("-0") and float(s) == 0 else s


def ci(lo: str, hi: str) -> str:
    """Write a 95% credible interval from its written ends.

    >>> ci("1", "2")
    '95% CrI 1 to 2'
    """
    return f"95% CrI {lo} to {hi}"


def ref_text(spec) -> str:
    """Write the reference exposure of a spec's log-linear form: fixed, or estimated.

    >>> from types import SimpleNamespace
    >>> ref_text(SimpleNamespace(model=SimpleNamespace(options=lambda: {})))
    'E_ref (estimated)'
    """
    ref = spec.model.options().get("exposure_ref")
    return f"{ref:g} mg/kg" if ref is not None else "E_ref (estimated)"


def dose(x: float) -> str:
    """Write a dose in mg/kg as short as it goes.

    >>> dose(2.0), dose(0.2)
    ('2', '0.2')
    """
    return f"{x:g}"


def study_name(s: str) -> str:
    """Write a study label as a citation.

    >>> study_name("KRUPITSKY2002"), study_name("HEENEY")
    ('Krupitsky 2002', 'Heeney')
    """
    head = s.rstrip("0123456789")
    year = s[len(head) :]
    return head.capitalize() + (f" {year}" if year else "")


def words(n: int) -> str:
    """Write a small count in words.

    >>> words(2), words(12)
    ('two', '12')
    """
    return {0: "no", 1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}.get(n, str(n))


def plural(n: int, one: str, many: str | None = None) -> str:
    """Write a count with its noun.

    >>> plural(1, "trial"), plural(2, "case report")
    ('one trial', 'two case reports')
    """
    return f"{words(n)} {one if n == 1 else (many or one + 's')}"


def md_table(header: list[str], rows: list[list], align: str | None = None) -> str:
    """Write a Markdown table; ``align`` has one of ``l``, ``r``, ``c`` per column.

    >>> print(md_table(["a", "b"], [[1, 2]]))
    | a | b |
    | --- | ---: |
    | 1 | 2 |
    """
    align = align or "l" + "r" * (len(header) - 1)
    marks = {"l": "---", "r": "---:", "c": ":---:"}
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks[a] for a in align) + " |"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def q(table: pd.DataFrame, row, col: str = "q50") -> float:
    """One cell of a summary table as a float (by default the posterior median).

    >>> q(pd.DataFrame({"q50": [0.5]}, index=["tau"]), "tau")
    0.5
    """
    return float(table.loc[row, col])


def interval(b, transform=None, fmt=None) -> str:
    """Write a summary row's median and 95% interval as ``**median** (95% CrI lo to hi)``.

    >>> interval({"q2.5": 0.0, "q50": 0.5, "q97.5": 1.0}, np.exp, sig)
    '**1.6** (95% CrI 1.0 to 2.7)'
    """
    t = transform or (lambda x: x)
    f = fmt or num
    return f"**{f(t(b['q50']))}** ({ci(f(t(b['q2.5'])), f(t(b['q97.5'])))})"


def route_list(routes) -> str:
    """Write route codes as the page names them.

    >>> route_list(["im", "iv"])
    'IM, IV'
    """
    return ", ".join(ROUTE_NAMES[r] for r in routes)


def outcome_list(outcomes) -> str:
    """Write outcome codes as the page names them (unknown ones as code).

    >>> outcome_list(["peak_map", "x"])
    'peak mean arterial pressure, `x`'
    """
    return ", ".join(OUTCOME_NAMES.get(o, f"`{o}`") for o in outcomes)

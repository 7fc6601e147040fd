"""Covariates for meta-regression: column names or a small formula.

They are turned into a design matrix with one named column per coefficient
``beta[<term>]``.

Formulas come from spec files and command lines, so they are parsed with :mod:`ast`
against a short whitelist and never evaluated: a formula library (formulaic, patsy)
would run arbitrary Python from the formula text, which a spec file must not be able to
do. The grammar is small on purpose:

``~ term + term + ...`` where a term is a column name, ``log(col)``, ``log2(col)``,
``log10(col)``, ``sqrt(col)``, ``center(col)`` or ``C(col, ref="level")``.

Text columns are categorical: one indicator per level other than the reference level
(the first level in sorted order unless ``ref`` names another), named ``col[level]``.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bayeskit.errors import UserError

_TRANSFORMS = {"log": np.log, "log2": np.log2, "log10": np.log10, "sqrt": np.sqrt}
_NEEDS_POSITIVE = {"log", "log2", "log10"}


def parse_formula(formula: str) -> list[tuple[str, str, str | None]]:
    """Parse a covariate formula into ``(transform, column, reference)`` terms.

    Examples
    --------
    >>> parse_formula("~ route + log(systemic_dose_mg_per_kg)")
    [('', 'route', None), ('log', 'systemic_dose_mg_per_kg', None)]
    >>> parse_formula("~ C(route, ref='iv')")
    [('C', 'route', 'iv')]
    """
    text = formula.strip()
    if not text.startswith("~"):
        raise UserError(f"a covariate formula starts with '~' (got {formula!r})")
    if len(text) > 500:
        raise UserError("the covariate formula is longer than 500 characters")
    try:
        tree = ast.parse(text[1:].strip(), mode="eval").body
    except SyntaxError:
        raise UserError(f"cannot read the covariate formula {formula!r}: {_GRAMMAR}") from None
    terms = []
    for node in _summands(tree, formula):
        terms.append(_term(node, formula))
    return terms


_GRAMMAR = ("write '~ col + log(col) + C(col, ref=\"level\")'; allowed functions: "
            f"{', '.join([*_TRANSFORMS, 'center', 'C'])}")  # fmt: skip


def _summands(node: ast.expr, formula: str) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _summands(node.left, formula) + _summands(node.right, formula)
    return [node]


def _term(node: ast.expr, formula: str) -> tuple[str, str, str | None]:
    if isinstance(node, ast.Name):
        return "", node.id, None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name = node.func.id
        if name in _TRANSFORMS or name == "center":
            if len(node.args) == 1 and isinstance(node.args[0], ast.Name) and not node.keywords:
                return name, node.args[0].id, None
        elif name == "C" and len(node.args) == 1 and isinstance(node.args[0], ast.Name):
            ref = None
            for kw in node.keywords:
                if kw.arg != "ref" or not isinstance(kw.value, ast.Constant):
                    break
                ref = str(kw.value.value)
            else:
                return "C", node.args[0].id, ref
    raise UserError(
        f"cannot read the term {ast.unparse(node)!r} in formula {formula!r}: {_GRAMMAR}"
    )


def design_matrix(
    table: pd.DataFrame,
    covariates: str | Sequence[str] | None,
    *,
    label: str = "study",
) -> pd.DataFrame:
    """Build the meta-regression design matrix (no intercept: ``mu`` is the intercept).

    Parameters
    ----------
    table : DataFrame
        One row per study (or arm), indexed by its label.
    covariates : str, list of str or None
        A formula (``"~ route + log(dose)"``) or column names; None for no covariates.
    label : str
        What a row is called in messages.

    Returns
    -------
    DataFrame
        Same index as ``table``, one float column per term, named as the coefficients
        ``beta[<term>]`` will be.

    Examples
    --------
    >>> t = pd.DataFrame({"route": ["im", "iv", "sl"], "dose": [2.0, 0.5, 0.2]},
    ...                  index=["A", "B", "C"])
    >>> design_matrix(t, "~ C(route, ref='im') + log(dose)").round(3)
       route[iv]  route[sl]  log(dose)
    A        0.0        0.0      0.693
    B        1.0        0.0     -0.693
    C        0.0        1.0     -1.609
    """
    if covariates is None or (not isinstance(covariates, str) and len(covariates) == 0):
        return pd.DataFrame(index=table.index)
    if isinstance(covariates, str):
        if covariates.strip().startswith("~"):
            terms = parse_formula(covariates)
        else:
            terms = [("", covariates.strip(), None)]
    else:
        terms = [("", c, None) for c in covariates]
    columns = {}
    for transform, col, ref in terms:
        if col not in table.columns:
            raise UserError(
                f"covariate {col!r} is not a column of the data; columns: "
                f"{', '.join(map(str, table.columns))}"
            )
        values = table[col]
        missing = values.isna()
        if missing.any():
            raise UserError(
                f"covariate {col!r} is missing for {label} "
                f"{', '.join(map(str, values.index[missing]))}: fill it in or "
                "drop the covariate"
            )
        categorical = transform == "C" or not pd.api.types.is_numeric_dtype(values)
        if categorical:
            columns |= _indicators(values.astype(str), col, ref)
        else:
            columns[_name(transform, col)] = _transform(values.astype(float), transform, col, label)
    X = pd.DataFrame(columns, index=table.index)
    constant = [c for c in X.columns if X[c].nunique() < 2]
    if constant:
        raise UserError(
            f"covariate term {constant[0]!r} takes the same value for every "
            f"{label}, so its coefficient cannot be estimated; drop it"
        )
    return X


def _name(transform: str, col: str) -> str:
    return f"{transform}({col})" if transform else col


def _transform(values: pd.Series, transform: str, col: str, label: str) -> pd.Series:
    if transform in _NEEDS_POSITIVE and (values <= 0).any():
        bad = ", ".join(map(str, values.index[values <= 0]))
        raise UserError(
            f"{transform}({col}) needs positive values; {label} {bad} "
            "has zero or less (a placebo arm's dose?)"
        )
    if transform == "sqrt" and (values < 0).any():
        raise UserError(f"sqrt({col}) needs values of at least 0")
    if transform == "center":
        return values - values.mean()
    return _TRANSFORMS[transform](values) if transform else values


def _indicators(values: pd.Series, col: str, ref: str | None) -> dict[str, pd.Series]:
    levels = sorted(values.unique())
    if ref is None:
        ref = levels[0]
    elif ref not in levels:
        raise UserError(
            f"reference level {ref!r} of {col!r} does not occur; levels: {', '.join(levels)}"
        )
    return {f"{col}[{lvl}]": (values == lvl).astype(float) for lvl in levels if lvl != ref}

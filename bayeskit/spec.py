"""Analysis specs: a TOML file that says what to fit, validated on load.

A spec names its data, outcome, model, covariates, priors and sampler settings (see
``models/README.md``). Unknown keys and wrong values are errors naming the key. TOML is
data: nothing in a spec is executed (prior strings and formulas are parsed, not
evaluated).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bayeskit.errors import UserError
from bayeskit.families._base import OptionsError

#: A spec is a few hundred bytes; a larger file is not a spec (and is refused unread).
MAX_SPEC_BYTES = 1024 * 1024


class _Refused(ValueError):
    """Options the family refused, kept as (option, message) pairs for the error list."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(message for _, message in problems))


class _Section(BaseModel):
    # strict: TOML is typed, so `chains = true` or `draws = "10"` is a mistake to report,
    # not a value to convert (pydantic would read true as 1 and "10" as 10)
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class DataSpec(_Section):
    """``[data]``: which files, outcome and timepoint, and how to compute effect sizes.

    Examples
    --------
    >>> data = DataSpec(files=["trials.csv"], measure="OR")
    >>> data.measure, data.add, data.to
    ('OR', 0.5, 'only0')
    """

    files: list[str] = Field(min_length=1)
    outcome: str | list[str] | None = None
    outcome_sd: dict[str, float] | None = None
    timepoint: str | list[str] | None = None
    measure: str | None = None
    add: float = 0.5
    to: Literal["only0", "all", "if0all", "none"] = "only0"
    drop00: bool = False
    ri: float = Field(0.5, ge=-1, le=1)
    sd_change: float | None = Field(None, gt=0)
    #: Descriptive tables (results in words, harms): shown in the report, never pooled.
    descriptive: list[str] | None = None


class ModelSpec(BaseModel):
    """``[model]``: the family and its options.

    The options (pooling, covariates, baseline, scale, form, ...) are the family's own
    (:mod:`bayeskit.families`): the family checks them, with their defaults, and refuses
    any that do not apply to it.

    Examples
    --------
    >>> model = ModelSpec(family="Binomial_Normal", pooling="full")
    >>> model.family, model.options()
    ('binomial-normal', {'pooling': 'full'})
    >>> ModelSpec(family="exposure-response", pooling="none")
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for ModelSpec
    ...
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    family: str = "normal-normal"

    @field_validator("family")
    @classmethod
    def _known_family(cls, value: str) -> str:
        from bayeskit.families import FAMILIES

        key = value.strip().lower().replace("_", "-")
        if key not in FAMILIES:
            raise ValueError(f"unknown model family; choose one of {', '.join(FAMILIES)}")
        return key

    @model_validator(mode="after")
    def _family_options(self) -> ModelSpec:
        from bayeskit.families import get_family

        try:
            get_family(self.family).options(self.options())
        except OptionsError as err:  # reported with the spec's other problems, one a line
            raise _Refused(err.problems) from None
        return self

    def options(self) -> dict[str, Any]:
        """Return the family options this section sets (the family supplies defaults)."""
        return {k: v for k, v in (self.model_extra or {}).items() if v is not None}


class QuestionSpec(_Section):
    """``[[questions]]``: a regimen whose expected effect the run reports.

    Examples
    --------
    >>> q = QuestionSpec(label="0.5 mg/kg iv", route="iv", dose_mg_per_kg=0.5)
    >>> q.sessions, q.threshold, q.indication is None
    (1, 0.1, True)
    """

    label: str
    route: Literal["iv", "im", "sl", "oral", "intranasal"]
    dose_mg_per_kg: float = Field(ge=0)
    sessions: float = Field(1, ge=1)
    indication: str | None = None
    threshold: float = 0.10


class ReportSpec(_Section):
    """``[report]``: how effects are stated.

    Examples
    --------
    >>> ReportSpec(better="lower", scales={"COWS points": 4}).scales
    {'COWS points': 4.0}
    """

    better: Literal["higher", "lower"] = "higher"
    scales: dict[str, float] = {}


class SensitivitySpec(_Section):
    """``[sensitivity]``: what ``bayeskit sensitivity`` varies.

    Examples
    --------
    >>> sens = SensitivitySpec(priors=[{"tau": "HalfNormal(1)"}])
    >>> sens.priors, sens.leave_one_out, sens.headline
    ([{'tau': 'HalfNormal(1)'}], True, [])
    >>> SensitivitySpec(options=[{"rho": 0.5}]).options  # model options refitted too
    [{'rho': 0.5}]
    """

    priors: list[dict[str, str]] = []
    options: list[dict[str, Any]] = []
    leave_one_out: bool = True
    headline: list[str] = []


class RobustnessSpec(_Section):
    """``[robustness]``: refit under each reasonable alternative (``robustness.csv``).

    Present in a spec, ``bayeskit fit`` refits an exposure-response model once per
    alternative (:mod:`bayeskit.robustness`) with these modest sampler settings: the
    table asks whether a conclusion's direction survives, which needs far fewer draws
    than the headline's intervals.

    Examples
    --------
    >>> RobustnessSpec().draws, RobustnessSpec().chains
    (500, 2)
    """

    draws: int = Field(500, ge=1)
    tune: int = Field(1000, ge=0)
    chains: int = Field(2, ge=1)


class SamplerSpec(_Section):
    """``[sampler]``: how to compute the posterior.

    Examples
    --------
    >>> sampler = SamplerSpec(method="exact", seed=1)
    >>> sampler.method, sampler.draws, sampler.chains, sampler.sampler
    ('exact', 1000, 4, 'nutpie')
    >>> SamplerSpec().method, SamplerSpec().auto_refit  # exact where it applies; refits
    ('auto', True)
    """

    method: Literal["auto", "mcmc", "exact"] = "auto"
    draws: int = Field(1000, ge=1)
    tune: int = Field(1000, ge=0)
    chains: int = Field(4, ge=1)
    seed: int | None = Field(None, ge=0, lt=2**32)
    sampler: Literal["nutpie", "pymc"] = "nutpie"
    target_accept: float = Field(0.9, ge=0.5, lt=1)
    auto_refit: bool = True


class Spec(_Section):
    """A whole analysis spec.

    Read one from TOML with :func:`load_spec`; missing sections take their defaults.

    Examples
    --------
    >>> spec = Spec(data=DataSpec(files=["eight_schools.csv"]),
    ...             priors={"mu": "Normal(0, 5)"})
    >>> spec.name, spec.model.family, spec.priors
    ('analysis', 'normal-normal', {'mu': 'Normal(mu=0, sigma=5)'})
    """

    name: str = "analysis"
    description: str = ""
    data: DataSpec
    model: ModelSpec = ModelSpec()
    priors: dict[str, str] = {}
    sampler: SamplerSpec = SamplerSpec()
    questions: list[QuestionSpec] = []
    report: ReportSpec = ReportSpec()
    sensitivity: SensitivitySpec = SensitivitySpec()
    robustness: RobustnessSpec | None = None
    base_dir: str = Field(".", exclude=True)

    @field_validator("priors")
    @classmethod
    def _parse_priors(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        from bayeskit.families import get_family
        from bayeskit.priors import parse_prior

        # the family's rules (which slots exist, positive-only, flat allowed); when the
        # [model] section itself is wrong, only the prior texts are checked
        model = info.data.get("model")
        family = get_family(model.family) if model is not None else None
        try:
            return {
                k: str(
                    family.parse_prior(k, v, what=f"priors.{k}")
                    if family is not None
                    else parse_prior(v, allow_flat=True, what=f"priors.{k}")
                )
                for k, v in value.items()
            }
        except UserError as err:  # reported with the spec's other problems
            raise ValueError(str(err)) from None

    def data_files(self) -> list[Path]:
        """Return the data files, resolved against the spec's folder.

        A file that is not there is an error: it is never replaced by a bundled file of
        the same name. (A bundled spec names its data relative to itself,
        ``../data/NAME.csv``, which holds in a checkout and in an installed package.)

        Examples
        --------
        >>> spec = Spec(data=DataSpec(files=["nowhere/eight_schools.csv"]))
        >>> spec.data_files()
        Traceback (most recent call last):
        ...
        bayeskit.errors.UserError: data file 'nowhere/eight_schools.csv': no such file ...
        """
        return self._resolve(self.data.files, "data file")

    def descriptive_files(self) -> list[Path]:
        """Return ``[data] descriptive``'s files, resolved as :meth:`data_files` does.

        Examples
        --------
        >>> from bayeskit._resources import models_dir
        >>> [p.name for p in load_spec(models_dir() / "ow_withdrawal.toml").descriptive_files()]
        ['narrative.csv', 'harms.csv']
        """
        return self._resolve(self.data.descriptive or [], "[data] descriptive file")

    def _resolve(self, names: list[str], what: str) -> list[Path]:
        out = []
        for name in names:
            path = Path(name)
            if not path.is_absolute():
                path = Path(self.base_dir) / path
            if not path.exists():
                raise UserError(f"{what} {name!r}: no such file (looked for {path})")
            out.append(path)
        return out

    def fit_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`bayeskit.fit` that this spec stands for.

        Examples
        --------
        >>> from bayeskit._resources import models_dir
        >>> kwargs = load_spec(models_dir() / "oud_abstinence.toml").fit_kwargs()
        >>> kwargs["model"], sorted(kwargs["model_options"])  # doctest: +NORMALIZE_WHITESPACE
        ('exposure-response', ['compare_forms', 'form', 'likelihood', 'route_effect', 'scale',
                               'sessions', 'slope_scale'])
        """
        d, m, s = self.data, self.model, self.sampler
        effect_options = {
            "add": d.add,
            "to": d.to,
            "drop00": d.drop00,
            "ri": d.ri,
            "sd_change": d.sd_change,
        }
        options = m.options()
        if d.measure is not None:
            options["measure"] = d.measure
        if d.outcome_sd is not None:
            options["outcome_sd"] = d.outcome_sd
        return {
            "model": m.family, "outcome": d.outcome, "timepoint": d.timepoint,
            "priors": dict(self.priors), "method": s.method, "draws": s.draws,
            "tune": s.tune, "chains": s.chains, "seed": s.seed, "sampler": s.sampler,
            "target_accept": s.target_accept, "auto_refit": s.auto_refit,
            "effect_options": effect_options,
            "model_options": options,
        }  # fmt: skip

    def to_toml_dict(self) -> dict[str, Any]:
        """Return the spec as plain data (for the run manifest)."""
        return self.model_dump(mode="json", exclude_none=True)


def load_spec(path: str | Path) -> Spec:
    """Read and validate a spec file.

    Examples
    --------
    >>> from bayeskit._resources import models_dir
    >>> spec = load_spec(models_dir() / "eight_schools.toml")
    >>> spec.model.family, spec.data_files()[0].name
    ('normal-normal', 'eight_schools.csv')
    """
    path = Path(path)
    if not path.exists() and str(path) == path.name and not path.suffix:
        from bayeskit._resources import models_dir

        # a bare name (no folder, no suffix) is a bundled spec, so that
        # `bayeskit fit oud_abstinence` works from any folder; anything that looks like a
        # path must exist, and is never replaced by a bundled file of the same name
        bundled = models_dir() / f"{path.name}.toml"
        if not bundled.is_file():
            known = ", ".join(sorted(p.stem for p in models_dir().glob("*.toml")))
            raise UserError(
                f"{path}: no such spec file, and no bundled spec of that name "
                f"(bundled specs: {known})"
            )
        path = bundled
    from bayeskit.evidence.read import read_bytes

    try:
        data = read_bytes(path, limit=MAX_SPEC_BYTES)
    except UserError as err:
        from bayeskit._resources import models_dir

        hint = ""
        if not path.exists() and (models_dir() / path.name).is_file():
            hint = f" (for the bundled spec of that name write just {path.stem!r})"
        raise UserError(f"spec {err}{hint}") from None
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"{path}: not valid TOML: {err}") from None
    except RecursionError:
        raise UserError(f"{path}: nested too deeply to be a spec") from None
    return spec_from_dict(raw, source=str(path), base_dir=path.parent)


def spec_from_dict(raw: dict, *, source: str = "(spec)", base_dir: str | Path = ".") -> Spec:
    """Validate a spec given as a dict (a parsed TOML file, or built from CLI flags).

    Parameters
    ----------
    raw : dict
        The spec's tables, as :func:`tomllib.load` returns them.
    source : str
        Where the spec came from, for error messages.
    base_dir : path
        Folder that relative data paths are read from.

    Returns
    -------
    Spec

    Raises
    ------
    UserError
        Naming every unknown key or wrong value.

    Examples
    --------
    >>> from bayeskit.spec import spec_from_dict
    >>> spec = spec_from_dict({"data": {"files": ["eight_schools.csv"]},
    ...                        "priors": {"tau": "HalfCauchy(5)"}})
    >>> spec.model.family, spec.model.options(), spec.priors["tau"]
    ('normal-normal', {}, 'HalfCauchy(beta=5)')
    >>> spec_from_dict({"data": {"files": ["x.csv"]}, "model": {"pooling": "some"}})
    Traceback (most recent call last):
    ...
    bayeskit.errors.UserError: ...option 'pooling' of model normal-normal...
    """
    if not isinstance(raw, dict):
        raise TypeError(f"spec_from_dict takes a dict of the spec's tables; got {type(raw)}")
    if "base_dir" in raw:  # set from where the spec lies, never by the spec itself
        raise UserError(
            f"{source}: the spec has 1 problem:\n  - key 'base_dir': unknown key (data "
            "paths are read relative to the spec's own folder)"
        )
    try:
        return Spec.model_validate({**raw, "base_dir": str(base_dir)})
    except ValidationError as err:
        lines = []
        for e in err.errors():
            refused = (e.get("ctx") or {}).get("error")
            if isinstance(refused, _Refused):  # options the family refuses, one a line
                where = ".".join(str(p) for p in e["loc"])
                lines += [f"  - key '{where}.{k}': {msg}" for k, msg in refused.problems]
                continue
            key = ".".join(str(p) for p in e["loc"]) or "(top level)"
            msg = e["msg"].removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":
                msg = "unknown key (check its spelling; see models/README.md)"
            elif e["type"] == "missing":
                msg = "required key is missing"
            elif e["type"].endswith("_type"):  # strict types: say what was found
                msg += f" (found {e['input']!r})"
            lines.append(f"  - key '{key}': {msg}")
        raise UserError(
            f"{source}: the spec has {len(lines)} problem"
            f"{'s' if len(lines) != 1 else ''}:\n" + "\n".join(lines)
        ) from None
    except UserError as err:  # a prior string that does not parse
        raise UserError(f"{source}: {err}") from None

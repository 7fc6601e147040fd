"""What a model family is: prior slots, options, data preparation, model, prediction, SBC.

A family is a subclass of :class:`Family` that declares everything about itself, so that
the rest of bayeskit (fitting, specs, the CLI, SBC, reports) asks the family instead of
comparing family names. Register it in :data:`bayeskit.families.FAMILIES`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from bayeskit.errors import UserError


@dataclass(frozen=True)
class PriorSlot:
    """A parameter of a family that takes a prior, with the rules for it.

    Attributes
    ----------
    name : str
    default : str or None
        The default prior as text; None when the family derives it from the data
        (:meth:`Family.default_priors`, e.g. from the effect measure's scale).
    reason : str
        One line saying why the default is what it is.
    positive : bool
        The parameter is a standard deviation (or a scale): its prior must live on
        ``[0, inf)``.
    flat : bool
        The improper ``Flat()`` prior is allowed.

    Examples
    --------
    >>> slot = PriorSlot("tau", "HalfNormal(0.5)", "Röver et al. 2021", positive=True)
    >>> str(slot.parse("HalfCauchy(1)"))
    'HalfCauchy(beta=1)'
    >>> slot.parse("Normal(0, 1)")
    Traceback (most recent call last):
    ...
    bayeskit.errors.UserError: prior for tau 'Normal(0, 1)' must be a distribution on [0, inf) ...
    """

    name: str
    default: str | None
    reason: str
    positive: bool = False
    flat: bool = False

    def parse(self, value: Any, *, what: str | None = None):
        """Read a prior for this slot (text or Prior), applying the slot's rules."""
        from bayeskit.priors import parse_prior

        return parse_prior(
            value,
            allow_flat=self.flat,
            positive=self.positive,
            what=what or f"prior for {self.name}",
        )


class OptionsError(UserError):
    """Options a family refuses: ``problems`` lists (option, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(message for _, message in problems))


class Options(BaseModel):
    """Base of every family's options model: unknown options are refused."""

    # strict: TOML is typed, so `route_effect = 1` or `exposure_ref = "0.1"` is a mistake
    # to report, not a value to convert
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


@dataclass(frozen=True)
class SBCDesign:
    """How a family is calibrated by :func:`bayeskit.sbc`.

    Attributes
    ----------
    priors : dict of str to str
        Proper, moderate priors under which the family is calibrated.
    parameters : tuple of str
        Parameters whose ranks are tested (a vector contributes its first element).
    template : callable
        ``template(studies, priors)`` returns the model built on the SBC design.
    exact : callable, optional
        SBC of the family's exact engine, ``exact(priors=, studies=, replicates=,
        draws=, seed=)`` returning rank rows (see
        :func:`bayeskit.calibration.sbc_normal_normal`).
    """

    priors: Mapping[str, str]
    parameters: tuple[str, ...]
    template: Callable[[int, dict], Any] = field(repr=False)
    exact: Callable[..., Any] | None = field(default=None, repr=False)


class Family:
    """A model family. Subclasses set the class attributes and implement the methods.

    Class attributes
    ----------------
    name : str
        The registry key, e.g. ``normal-normal``.
    data : str
        The data kind: ``study`` (``yi``, ``sei``), ``arm`` or ``exposure``.
    outcome_type : str or None
        For arm data: ``binary`` or ``continuous``.
    description : str
    pooled : bool
        Whether the model has a pooled effect ``mu`` that a report leads with.
    slots : tuple of PriorSlot
        The parameters that take priors.
    options_model : type of Options
        The family's options (``extra="forbid"``).
    example : dict
        A small data set and options for tests and docs: ``{"data": file, **kwargs}``.
    forest_note : str or None
        A sentence the report adds to the forest plot's caption, for a family whose
        forest plot needs one (exposure-response: what its contrasts compare).
    """

    name: ClassVar[str]
    data: ClassVar[str]
    outcome_type: ClassVar[str | None] = None
    description: ClassVar[str]
    slots: ClassVar[tuple[PriorSlot, ...]]
    options_model: ClassVar[type[Options]]
    #: whether the family has a pooled effect ``mu`` (reports lead with it)
    pooled: ClassVar[bool] = True
    example: ClassVar[dict[str, Any]] = {}
    #: a sentence the report adds to the forest plot's caption, or None
    forest_note: ClassVar[str | None] = None
    #: the likelihood and the model of the effects in words, for a methods section
    #: (:mod:`bayeskit.report.methods`); ``{effects}`` stands for the study effects' model
    methods: ClassVar[str] = ""

    def __repr__(self) -> str:
        return f"<family {self.name}>"

    # ------------------------------------------------------------------ priors

    @property
    def prior_names(self) -> tuple[str, ...]:
        """Names of the parameters that take priors.

        Examples
        --------
        >>> from bayeskit.families import get_family
        >>> get_family("normal-normal").prior_names
        ('mu', 'tau', 'beta')
        """
        return tuple(s.name for s in self.slots)

    def slot(self, name: str) -> PriorSlot:
        """Return the prior slot called ``name``; a UserError lists the family's slots."""
        for s in self.slots:
            if s.name == name:
                return s
        raise UserError(
            f"model {self.name} has no prior called {name!r}; its priors: "
            f"{', '.join(self.prior_names)}"
        )

    def parse_prior(self, name: str, value: Any, *, what: str | None = None):
        """Read the prior for ``name``: the one place a family's prior rules are applied.

        Examples
        --------
        >>> from bayeskit.families import get_family
        >>> str(get_family("normal-normal").parse_prior("mu", "Flat()"))
        'Flat()'
        """
        return self.slot(name).parse(value, what=what)

    def default_priors(self, prepared) -> dict:
        """Default priors for this data: the slots' fixed defaults."""
        return {s.name: s.parse(s.default) for s in self.slots if s.default is not None}

    def resolve_priors(self, prepared, given: Mapping[str, Any] | None) -> dict:
        """Return the default priors for ``prepared``, overridden by those given.

        Examples
        --------
        >>> import bayeskit as bk
        >>> from bayeskit.families import get_family
        >>> from bayeskit.families.data import study_data
        >>> nn = get_family("normal-normal")
        >>> prepared = study_data(bk.load_evidence(bk.data_path("eight_schools.csv")))
        >>> {k: str(v) for k, v in nn.resolve_priors(prepared, {"tau": "HalfCauchy(5)"}).items()}
        {'mu': 'Normal(mu=0, sigma=129)', 'tau': 'HalfCauchy(beta=5)',
         'beta': 'Normal(mu=0, sigma=129)'}
        """
        given = dict(given or {})
        for name in given:
            self.slot(name)
        chosen = self.default_priors(prepared)
        for s in self.slots:  # fixed defaults a subclass's derived ones do not cover
            if s.default is not None and s.name not in chosen:
                chosen[s.name] = s.parse(s.default)
        for name, value in given.items():
            chosen[name] = self.parse_prior(name, value)
        return chosen

    # ----------------------------------------------------------------- options

    def options(self, given: Mapping[str, Any] | None = None) -> Options:
        """Validate options; a UserError names what is wrong and what the family accepts.

        Examples
        --------
        >>> from bayeskit.families import get_family
        >>> get_family("exposure-response").options({"pooling": "none"})
        Traceback (most recent call last):
        ...
        bayeskit.families._base.OptionsError: option 'pooling' does not apply to model ...: ...
        """
        given = {k: v for k, v in dict(given or {}).items() if v is not None}
        accepted = list(self.options_model.model_fields)
        problems = [
            (k, f"option {k!r} does not apply to model {self.name}; its options: "
                f"{', '.join(accepted)}")
            for k in given
            if k not in accepted
        ]  # fmt: skip
        try:
            checked = self.options_model(**{k: v for k, v in given.items() if k in accepted})
        except ValidationError as err:
            for e in err.errors():
                key = ".".join(str(p) for p in e["loc"])
                msg = e["msg"].removeprefix("Value error, ")
                problems.append(
                    (key, f"option {key!r} of model {self.name}: {msg} (got {e.get('input')!r})")
                )
        if problems:
            raise OptionsError(problems)
        return checked

    # ---------------------------------------------------- data, model, results

    def prepare(self, tables: list, options: Options, *, outcome, timepoint, effect_options):
        """Turn evidence tables into the data the model takes (the only place that does)."""
        raise NotImplementedError

    def build(self, prepared, priors: dict, options: Options):
        """Return the ``pymc.Model`` of this family for the prepared data."""
        raise NotImplementedError

    def resolve(self, prepared, options: Options) -> Options:
        """Return the options with data-dependent defaults settled (``"auto"`` choices)."""
        return options

    def settings(self, prepared, options: Options) -> dict:
        """Return the options as recorded in a fit's settings (defaults resolved)."""
        return options.model_dump()

    #: exact posterior engine ``exact(prepared, priors, options) -> ExactPosterior``, if any
    exact: ClassVar[Callable | None] = None

    def measure(self, settings: Mapping[str, Any]) -> str | None:
        """Return the effect measure ``mu`` and ``theta`` live on (None: from the data)."""
        return None

    #: ``predict(posterior, settings, **regimen) -> xarray.Dataset``, if the family has one
    predict: ClassVar[Callable | None] = None

    #: whether a funnel plot (effect against standard error) describes the family's data
    funnel: ClassVar[bool] = False

    def within_study_variances(self, prepared):
        """Within-study sampling variances of the contrasts that ``tau`` is measured against.

        Used for I^2 and H^2 (:mod:`bayeskit.heterogeneity`).

        Returns
        -------
        tuple of (array, array or None) or None
            The variances and the meta-regression covariates of their studies (None:
            none); None for a family without a between-study SD.
        """
        return None

    def fitted_contrasts(self, table, posterior, settings):
        """Each observed contrast with the model's fitted value at its doses, for a forest plot.

        For families whose effects depend on dose (exposure-response); None otherwise,
        where the study's own effect ``theta`` is the fitted value.

        Returns
        -------
        list of dict or None
            ``label``, ``study``, ``yi``, ``sei`` and ``fitted`` (draws) per contrast.
        """
        return None

    @property
    def sbc(self) -> SBCDesign | None:
        """The SBC design of this family (None: not calibrated)."""
        return None

    # --------------------------------------------------------------------- LOO

    #: why the family keeps each observation's likelihood given the study effects for
    #: LOO (said in reports when :meth:`marginal_log_likelihood` returns None)
    conditional_loo_note: ClassVar[str] = (
        "the log-likelihood is each observation's given its study's own effects "
        "(conditional LOO): it says how well a study's data are predicted once that "
        "study's effects are known, not how well a new study is predicted"
    )

    def marginal_log_likelihood(self, prepared, posterior, priors=None):
        """Each study's log-likelihood with its random effects integrated out, for LOO.

        Leave-one-study-out cross-validation needs, per draw of the population
        parameters, the likelihood of a study whose own effects are drawn afresh from
        the population (:mod:`bayeskit.families._marginal`).

        Parameters
        ----------
        prepared
            The data as the model saw it.
        posterior : xarray.Dataset
            The posterior draws (dims ``chain``, ``draw``).
        priors : dict, optional
            The fit's priors (a fixed study baseline is integrated against its prior).

        Returns
        -------
        xarray.Dataset or None
            One variable with dims ``(chain, draw, study)`` and attributes ``loo``
            (``"leave-one-study-out"``, or ``"conditional"`` where the model has no
            population to predict a left-out study from) and ``loo_note`` (what it is);
            None keeps the model's own pointwise log-likelihood, labelled conditional
            with :attr:`conditional_loo_note`.
        """
        return None


def evidence_tables(data) -> list:
    """Return the evidence as a list of validated tables, one per file (shapes may differ).

    Examples
    --------
    >>> import bayeskit as bk
    >>> [len(t) for t in evidence_tables([bk.data_path("eight_schools.csv")])]
    [8]
    """
    from pathlib import Path

    import pandas as pd

    from bayeskit.evidence import load_evidence

    if isinstance(data, pd.DataFrame):
        return [data]
    if isinstance(data, list) and all(isinstance(t, pd.DataFrame) for t in data):
        return data
    paths = [data] if isinstance(data, (str, Path)) else list(data)
    return [load_evidence(p) for p in paths]

"""Methods and results paragraphs, written from a run directory as a journal would print them.

Everything comes from the run's own files (manifest, diagnostics, summary): the data and
their SHA-256, the model in words (each family says its own likelihood:
:attr:`bayeskit.families.Family.methods`), every prior with where it came from, the
engine and sampler settings, the diagnostics and the software versions. The result is
``methods.md`` in the run directory and the report's "Methods" section.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING

from bayeskit.report.text import CHECK_SHORT, headline, num

if TYPE_CHECKING:
    from bayeskit.report.run import Run

#: the software named in the methods, in this order, as the manifest spells them
SOFTWARE = ("pymc", "pytensor", "nutpie", "arviz", "numpy", "scipy", "pandas", "xarray")

REFERENCES = {
    "jackson": "Jackson D, Law M, Stijnen T, Viechtbauer W, White IR. A comparison of seven "
    "random-effects models for meta-analyses that estimate the summary odds ratio. Stat Med "
    "2018;37:1059-85.",
    "rover": "Röver C, Bender R, Dias S, et al. On weakly informative prior distributions for "
    "the heterogeneity parameter in Bayesian random-effects meta-analysis. Res Synth Methods "
    "2021;12:448-74.",
    "turner": "Turner RM, Jackson D, Wei Y, Thompson SG, Higgins JPT. Predictive distributions "
    "for between-study heterogeneity and simple methods for their application in Bayesian "
    "meta-analysis. Stat Med 2015;34:984-98.",
    "nuts": "Hoffman MD, Gelman A. The No-U-Turn sampler: adaptively setting path lengths in "
    "Hamiltonian Monte Carlo. J Mach Learn Res 2014;15:1593-623.",
    "rhat": "Vehtari A, Gelman A, Simpson D, Carpenter B, Bürkner PC. Rank-normalization, "
    "folding, and localization: an improved R-hat for assessing convergence of MCMC. "
    "Bayesian Anal 2021;16:667-718.",
    "pymc": "Abril-Pla O, Andreani V, Carroll C, et al. PyMC: a modern and comprehensive "
    "probabilistic programming framework in Python. PeerJ Comput Sci 2023;9:e1516.",
    "loo": "Vehtari A, Gelman A, Gabry J. Practical Bayesian model evaluation using "
    "leave-one-out cross-validation and WAIC. Stat Comput 2017;27:1413-32.",
}


@dataclass
class Methods:
    """The methods and results of a run, as paragraphs, with the works they cite.

    Examples
    --------
    >>> text = Methods(["We fitted a model."], ["mu is 4."], ["A. B. 2020."])
    >>> print(text.markdown("eight_schools"))
    # Methods and results: eight_schools
    <BLANKLINE>
    ## Methods
    <BLANKLINE>
    We fitted a model.
    <BLANKLINE>
    ## Results
    <BLANKLINE>
    mu is 4.
    <BLANKLINE>
    ## References
    <BLANKLINE>
    1. A. B. 2020.
    <BLANKLINE>
    """

    methods: list[str]
    results: list[str]
    references: list[str] = field(default_factory=list)

    def markdown(self, title: str) -> str:
        """Return the text as a Markdown page (``methods.md``)."""
        out = [f"# Methods and results: {title}", "", "## Methods", ""]
        for paragraph in self.methods:
            out += [paragraph, ""]
        out += ["## Results", ""]
        for paragraph in self.results:
            out += [paragraph, ""]
        if self.references:
            out += ["## References", ""]
            out += [f"{i}. {ref}" for i, ref in enumerate(self.references, 1)] + [""]
        return "\n".join(out)


def methods_text(run: Run) -> Methods:
    """Write the methods and results paragraphs of a run.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import bayeskit as bk
    >>> from bayeskit.report.run import load_run
    >>> from bayeskit.rundir import write_run
    >>> fit = bk.fit(bk.data_path("eight_schools.csv"), method="exact",
    ...              priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
    >>> run = load_run(write_run(fit, Path(tempfile.mkdtemp()) / "run", report=False))
    >>> text = methods_text(run)
    >>> print(text.methods[2])
    Priors: mu ~ Normal(mu=0, sigma=5) (as given for this analysis); tau ~
    HalfCauchy(beta=5) (as given for this analysis).
    >>> text.results[0][:60]
    'Across 8 studies, the pooled effect (mu, mean difference) is'
    """
    cited: list[str] = []

    def cite(key: str) -> str:
        if key not in cited:
            cited.append(key)
        return f"[{cited.index(key) + 1}]"

    methods = [
        _data_paragraph(run),
        _model_paragraph(run, cite),
        _priors_paragraph(run, cite),
        _engine_paragraph(run, cite),
        _software_paragraph(run, cite),
    ]
    results = [" ".join(headline(run))]
    return Methods(
        [p for p in methods if p], [r for r in results if r], [REFERENCES[k] for k in cited]
    )


def _data_paragraph(run: Run) -> str:
    data = run.spec.get("data") or {}
    k = run.data["study"].nunique() if run.data is not None and "study" in run.data else None
    what = [f"{k} {'study' if k == 1 else 'studies'}"] if k else ["the studies"]
    if data.get("outcome"):
        what.append(f"outcome {data['outcome']}")
    if data.get("timepoint"):
        what.append(f"at {data['timepoint']}")
    files = run.manifest.get("data") or {}
    hashes = "; ".join(f"{PurePath(str(f)).name} (SHA-256 {h})" for f, h in files.items())
    text = f"Data: {', '.join(what)}, on the {run.measure_label} scale"
    covariates = _covariates(run)
    if covariates:
        text += f", with study-level covariates {', '.join(covariates)}"
    text += "."
    if hashes:
        text += f" Evidence table{'s' if len(files) > 1 else ''}: {hashes}."
    return text


def _covariates(run: Run) -> list[str]:
    value = (run.spec.get("model") or {}).get("covariates") or []
    if isinstance(value, str):
        return [value]
    if value:
        return [str(v) for v in value]
    return [n[5:-1] for n in run.summary.index if str(n).startswith("beta[")]


def _effects_words(run: Run) -> str:
    pooling = run.settings.get("pooling", "partial")
    covariates = _covariates(run)
    if pooling == "none":
        return "each study's effect theta_i was estimated on its own (no pooling)."
    if pooling == "full":
        return "all studies were assumed to share one effect, theta_i = mu (common effect)."
    mean = "mu + x_i'beta" if covariates else "mu"
    out = (
        f"the true study effects were modelled as exchangeable, theta_i ~ Normal({mean}, tau) "
        "(random effects"
    )
    if covariates:
        out += f"; a meta-regression on {', '.join(covariates)}, mu being the effect at their "
        out += "reference levels"
    out += ")"
    form = run.settings.get("parametrization")
    if form in ("centered", "noncentered") and run.method != "exact":
        out += f", sampled in the {'non-' if form == 'noncentered' else ''}centred form"
    out += ". A new study's effect theta_new ~ Normal(mu, tau) gives the prediction interval."
    return out


def _borrowing_words(s: dict) -> str:
    """Say how the indications' dose slopes share information."""
    if s.get("borrowing", True) == "prior":
        prior = s.get("borrowed_prior") or {}
        return (
            f"estimated separately, the {prior.get('target', 'target')} dose contrast with a "
            f"robust mixture prior from the other indications' fit (weight "
            f"{s.get('borrowing_weight')}, variance inflated {s.get('borrowing_inflate')}-fold, "
            f"mean shifted by {s.get('borrowing_shift')}; effective sample size "
            f"{prior.get('ess', 'n/a')} {prior.get('ess_unit', '')})"
        )
    if s.get("borrowing", True):
        return "partially pooled (borrowing strength across indications)"
    return "estimated separately"


def _model_paragraph(run: Run, cite) -> str:
    family = run.model_family
    if family is None or not family.methods:
        return f"Model: the {run.family or 'unknown'} family of bayeskit."
    s = run.settings | (run.spec.get("model") or {})
    text = family.methods.format(
        effects=_effects_words(run),
        form=s.get("form", "loglinear").replace("loglinear", "log-linear"),
        sessions={
            "multiplier": "each session adding the exposure of one",
            "term": "with a separate term for the number of sessions",
            "ignore": "the number of sessions ignored",
        }.get(s.get("sessions", "multiplier"), str(s.get("sessions"))),
        exposure_ref=num(s.get("exposure_ref", 0.1)),
        borrowing=_borrowing_words(s),
    )
    if "Jackson et al. 2018" in text:
        text = text.replace("Jackson et al. 2018", f"Jackson et al. 2018 {cite('jackson')}")
    return f"Model ({run.family}): {text[:1].upper()}{text[1:]}"


def _priors_paragraph(run: Run, cite) -> str:
    priors = run.manifest.get("priors") or {}
    if not priors:
        return ""
    given = dict(run.spec.get("priors") or {})
    given |= {k: priors[k] for k in run.settings.get("priors_given") or [] if k in priors}
    post = run.group("posterior")
    if post is not None:
        priors = used_priors(priors, post.data_vars, keep=set(given))
    family = run.model_family
    shown = []
    for name, prior in priors.items():
        if name in given:
            source = "as given for this analysis"
            text = str(given[name]).lower()
            if text.startswith("turner"):
                source += f", Turner et al. 2015 {cite('turner')}"
            elif text.startswith("rover"):
                source += f", Röver et al. 2021 {cite('rover')}"
        else:
            reason = _slot_reason(family, name)
            source = f"bayeskit's default{': ' + reason if reason else ''}"
            if "Röver" in reason:
                source += f" {cite('rover')}"
            elif "Turner" in reason:
                source += f" {cite('turner')}"
        shown.append(f"{name} ~ {prior} ({source})")
    return "Priors: " + "; ".join(shown) + "." if shown else ""


def used_priors(priors: dict, names, *, keep=()) -> dict[str, str]:
    """Return the priors of the parameters a model has (``names``), as text.

    A family's slot the model did not use (``beta`` without covariates) is no prior of
    the analysis; ``keep`` names priors to show anyway (those the analyst set).

    Examples
    --------
    >>> used_priors({"mu": "Normal(0, 5)", "beta": "Normal(0, 10)", "tau": "HalfCauchy(5)"},
    ...             ["mu", "tau", "theta", "theta_new"])
    {'mu': 'Normal(0, 5)', 'tau': 'HalfCauchy(5)'}
    """
    names = [str(n) for n in names]
    return {
        k: str(v)
        for k, v in priors.items()
        if k in keep or any(n == k or n.startswith(f"{k}_") or n.startswith(f"{k}[") for n in names)
    }


def priors_line(run: Run) -> str:
    """One sentence naming the priors of a run, for every place its numbers are shown.

    Examples
    --------
    >>> from pathlib import Path
    >>> import pandas as pd
    >>> from bayeskit.report.run import Run
    >>> manifest = {"priors": {"mu": "Normal(mu=0, sigma=5)", "tau": "HalfCauchy(beta=5)"}}
    >>> priors_line(Run(Path("."), pd.DataFrame(), manifest))
    'Priors: mu ~ Normal(mu=0, sigma=5); tau ~ HalfCauchy(beta=5).'
    """
    priors = run.manifest.get("priors") or {}
    post = run.group("posterior")
    if post is not None:
        keep = set(run.spec.get("priors") or {}) | set(run.settings.get("priors_given") or [])
        priors = used_priors(priors, post.data_vars, keep=keep)
    if not priors:
        return ""
    return "Priors: " + "; ".join(f"{k} ~ {v}" for k, v in priors.items()) + "."


def _slot_reason(family, name: str) -> str:
    if family is None:
        return ""
    try:
        return str(family.slot(name).reason or "")
    except Exception:  # noqa: BLE001 - a run of another version may name other slots
        return ""


def _engine_paragraph(run: Run, cite) -> str:
    s = run.settings
    reason = str(s.get("engine_reason") or "")
    if run.method == "exact":
        text = (
            "Computation: the posterior was computed with bayeskit's exact engine, by "
            "numerical integration over tau on a quadrature grid, with mu and the study "
            "effects conditionally normal given tau; there is no Monte Carlo error and no "
            "sampling diagnostic applies"
        )
        return text + (f" ({reason})." if reason else ".")
    sampler = s.get("sampler", "nutpie")
    text = (
        f"Computation: the posterior was sampled with the No-U-Turn sampler {cite('nuts')} "
        f"({sampler}{' ' + cite('pymc') if sampler == 'pymc' else ''}, model written in "
        f"PyMC {cite('pymc') if sampler != 'pymc' else ''}): {s.get('chains')} chains of "
        f"{s.get('draws')} draws after {s.get('tune')} tuning steps, target acceptance "
        f"{s.get('target_accept')}, seed {s.get('seed')}"
    ).replace(" )", ")")
    attempts = s.get("attempts") or []
    if len(attempts) > 1:
        last = attempts[-1]
        text += (
            f"; the first run had {attempts[0].get('divergences')} divergent transitions, so "
            f"the sampler was rerun automatically ({len(attempts)} runs; the last with target "
            f"acceptance {last.get('target_accept')}"
            + (f", {last['parametrization']} form" if last.get("parametrization") else "")
            + "), and the last run is reported"
        )
    text += ". " + _diagnostics_sentence(run, cite)
    return text


def _diagnostics_sentence(run: Run, cite) -> str:
    checks = run.diagnostics.get("checks") or []
    if not checks:
        return "No convergence diagnostics were recorded."
    parts = []
    for c in checks:
        name = CHECK_SHORT.get(c.get("name"), str(c.get("name")))
        value = c.get("value")
        shown = num(value) if isinstance(value, int | float) else ""
        word = {"r_hat": "largest", "ess_bulk": "smallest", "ess_tail": "smallest"}.get(
            c.get("name"), "worst"
        )
        verdict = {"pass": "passed", "warn": "warning", "fail": "failed"}.get(
            c.get("verdict"), str(c.get("verdict"))
        )
        parts.append(f"{name} ({word} {shown}: {verdict})" if shown else f"{name} ({verdict})")
    overall = {"pass": "all passed", "warn": "raised warnings", "fail": "failed"}.get(
        str(run.diagnostics.get("verdict")), str(run.diagnostics.get("verdict"))
    )
    return (
        f"Convergence was checked with rank-normalised split R-hat and effective sample "
        f"sizes {cite('rhat')}, divergent transitions, tree depth and E-BFMI, and the fit with "
        f"PSIS-LOO Pareto k {cite('loo')}: {'; '.join(parts)}. Overall the diagnostics "
        f"{overall}."
    )


def _software_paragraph(run: Run, cite) -> str:
    v = run.manifest.get("versions") or {}
    if not v:
        return ""
    named = [f"{name} {v[name]}" for name in SOFTWARE if v.get(name, "not installed")
             != "not installed"]  # fmt: skip
    text = (
        f"Software: bayeskit {v.get('bayeskit', '?')} on Python {v.get('python', '?')}"
        + (f", with {', '.join(named)}" if named else "")
        + "."
    )
    command = run.manifest.get("command")
    if isinstance(command, list) and command:
        import shlex

        parts = [PurePath(str(command[0])).name, *map(str, command[1:])]
        text += f" Command: `{shlex.join(parts)}`."
    if run.manifest.get("created"):
        text += f" Run on {run.manifest['created']}."
    return text

"""The answers to each spec's questions, and the numbers the page states about them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

import bayeskit as bk
from bayeskit.questions import (
    BORROWING_FITS,
    answer_questions,
    effect_draws,
    question_answer,
)

from .fits import Analyses

#: the borrowing table's rows: exchangeable slopes, separate slopes, informative prior
WITH, WITHOUT, PRIOR = BORROWING_FITS[True], BORROWING_FITS[False], BORROWING_FITS["prior"]


def anchor_text(fit: bk.Fit) -> str:
    """Return the doses and route of the fit's anchor dose contrast ('2 vs 0.2 mg/kg IM')."""
    from .fmt import ROUTE_NAMES, dose

    low, high, route = fit.data.anchor
    code = fit.data.route[route]
    return f"{dose(high)} vs {dose(low)} mg/kg {ROUTE_NAMES.get(code, code)}"


def p_slope_positive(fit: bk.Fit, indication: str) -> float:
    """Posterior probability that ``indication``'s exposure-response slope is positive."""
    return float((fit.idata["posterior"]["beta_dose"].sel(indication=indication) > 0).mean())


@dataclass
class OudNumbers:
    """Opioid use disorder: the 1- and 3-session questions at the trials' dose and route."""

    spec: object
    fit: bk.Fit
    answers: pd.DataFrame
    q1: object  # the 1-session question
    q3: object  # the 3-session question
    tab: pd.DataFrame
    lowest: float  # the lowest dose any trial used
    share_below: float  # share of the question dose's effect below the lowest dose
    p_slope_pos: float

    @property
    def r1(self) -> pd.DataFrame:
        """The answer to the 1-session question."""
        return question_answer(self.answers, self.q1.label)

    @property
    def r3(self) -> pd.DataFrame:
        """The answer to the 3-session question."""
        return question_answer(self.answers, self.q3.label)

    @property
    def routes(self) -> list[str]:
        """The routes the trials used, sorted."""
        return sorted(set(self.tab["route"].dropna()))

    @property
    def all_on_ketamine(self) -> bool:
        """Whether every arm, controls included, received ketamine."""
        return bool((self.tab["dose_mg_per_kg"] > 0).all())

    @property
    def indication(self) -> str:
        """The one indication of the OUD analysis."""
        return self.fit.data.indication[0]


def oud_numbers(a: Analyses) -> OudNumbers:
    """Answer the OUD spec's questions; the share of the effect below the lowest dose."""
    spec, fit = a.specs["oud_abstinence"], a.fits["oud_abstinence"]
    im_qs = [qq for qq in spec.questions if qq.route == "im"]
    q1 = min(im_qs, key=lambda qq: qq.sessions)
    q3 = max(im_qs, key=lambda qq: qq.sessions)
    tab = fit.data.table
    lowest = min(d for d in set(tab["dose_mg_per_kg"]) if d > 0)
    low_route = tab.loc[tab["dose_mg_per_kg"] == lowest, "route"].iloc[0]
    e_low = effect_draws(fit, route=low_route, dose_mg_per_kg=lowest, sessions=1)["effect"]
    e_hi = effect_draws(fit, route=q1.route, dose_mg_per_kg=q1.dose_mg_per_kg, sessions=1)
    share_below = float(np.median((e_low / e_hi["effect"]).values))
    p_pos = p_slope_positive(fit, fit.data.indication[0])
    return OudNumbers(
        spec, fit, answer_questions(fit, spec), q1, q3, tab, lowest, share_below, p_pos
    )


@dataclass
class OwNumbers:
    """Opioid withdrawal: the question with all studies and without the case reports."""

    spec: object
    fit: bk.Fit
    answers: pd.DataFrame
    rct_only: pd.DataFrame  # the question answered by the fit without case reports
    case_reports: list[str]
    rct_studies: list[str]

    @property
    def question(self):
        """The spec's first question."""
        return self.spec.questions[0]

    @property
    def row(self) -> pd.DataFrame:
        """The answer to the question, with all studies."""
        return question_answer(self.answers, self.question.label)

    @property
    def tab(self) -> pd.DataFrame:
        """The evidence table the fit used."""
        return self.fit.data.table

    @property
    def randomised(self) -> pd.DataFrame:
        """The randomised studies' rows."""
        return self.tab[self.tab["design"].isin(["rct", "crossover_rct"])]

    @property
    def sign(self) -> int:
        """-1 when lower is better, so that a reduction is written as a positive number."""
        return -1 if self.spec.report.better == "lower" else 1


def ow_numbers(a: Analyses) -> OwNumbers:
    """Answer the withdrawal spec's question, and again from the fit without case reports."""
    spec, fit = a.specs["ow_withdrawal"], a.fits["ow_withdrawal"]
    owq = spec.questions[0]
    rct_only = bk.predict(
        a.ow_rct,
        route=owq.route,
        dose_mg_per_kg=owq.dose_mg_per_kg,
        sessions=owq.sessions,
        scales=spec.report.scales,
        better=spec.report.better,
    )
    design = fit.data.table.drop_duplicates("study").set_index("study")["design"]
    rct_studies = [s for s, d in design.items() if d in ("rct", "crossover_rct")]
    return OwNumbers(spec, fit, answer_questions(fit, spec), rct_only, a.case_reports, rct_studies)


@dataclass
class SudNumbers:
    """Borrowing: the focus indication's slope and question with and without borrowing."""

    spec: object
    fit: bk.Fit
    alone: bk.Fit
    borrow: pd.DataFrame
    answers: pd.DataFrame
    pred_alone: pd.DataFrame  # the question answered without borrowing

    @property
    def question(self):
        """The spec's first question."""
        return self.spec.questions[0]

    @property
    def focus(self) -> str:
        """The indication the question is about."""
        return self.question.indication

    @property
    def others(self) -> list[str]:
        """The indications that lend strength to the focus."""
        return [i for i in self.fit.data.indication if i != self.focus]

    @property
    def pred_with(self) -> pd.DataFrame:
        """The answer to the question with borrowing."""
        return question_answer(self.answers, self.question.label)

    @property
    def b_with(self) -> pd.Series:
        """The focus dose contrast's summary with borrowing (exchangeable slopes)."""
        return self.borrow.loc[(self.focus, WITH)]

    @property
    def b_alone(self) -> pd.Series:
        """The focus dose contrast's summary without borrowing."""
        return self.borrow.loc[(self.focus, WITHOUT)]

    @property
    def b_prior(self) -> pd.Series | None:
        """The focus dose contrast's summary under the informative prior, if fitted."""
        key = (self.focus, PRIOR)
        return self.borrow.loc[key] if key in self.borrow.index else None

    @property
    def parameter(self) -> str:
        """The borrowing table's parameter (``dose_contrast``, else ``beta_dose``)."""
        return str(self.borrow["parameter"].iloc[0])

    @property
    def anchor(self) -> str:
        """What the dose contrast compares."""
        return anchor_text(self.fit)


def sud_numbers(a: Analyses) -> SudNumbers:
    """Answer the joint spec's question with borrowing, and from the refit without."""
    spec, fit = a.specs["sud_abstinence"], a.fits["sud_abstinence"]
    sq = spec.questions[0]
    pred_alone = bk.predict(
        a.sud_alone,
        route=sq.route,
        dose_mg_per_kg=sq.dose_mg_per_kg,
        sessions=sq.sessions,
        indication=sq.indication,
        threshold=sq.threshold,
        better=spec.report.better,
    )
    return SudNumbers(spec, fit, a.sud_alone, a.borrow, answer_questions(fit, spec), pred_alone)

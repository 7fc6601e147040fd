"""What the ketamine evidence supports: the analysis behind ``docs/ketamine.md``.

It fits the three bundled specs (``oud_abstinence``, ``ow_withdrawal``,
``sud_abstinence``), the refits the page reports (the joint analysis without borrowing,
the withdrawal analysis without its case reports), and writes every number on the page
from those fits or from the evidence tables. Regenerate the page and its figures from the
repository root (about 1-2 minutes)::

    .venv/bin/python -m examples.ketamine

Modules, in the order they run: :mod:`.fits` (load the specs and fit each), :mod:`.numbers`
(the questions each spec asks), :mod:`.figures`, :mod:`.tables` and :mod:`.page` (the
Markdown), :mod:`.run` (all of it). ``tests/test_examples.py`` runs it with a few draws.
"""

from .run import Result, make_page

__all__ = ["Result", "make_page"]

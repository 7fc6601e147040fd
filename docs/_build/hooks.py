"""MkDocs hooks: point links to repository files at their pages, fill in generated tables.

* A relative link that leaves ``docs/`` (``../data/README.md``) is rewritten to the page
  that carries that file (see ``links.py``); one with no page fails the build, so a
  broken link cannot slip through ``--strict``.
* ``<!-- table: heterogeneity-priors -->`` in a page is replaced by the table of every
  named heterogeneity prior, computed from ``bayeskit.priors``.
"""

from __future__ import annotations

import posixpath
import re
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from links import outside_link, relative  # noqa: E402

LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def on_page_markdown(markdown, page, config, files):
    """Rewrite links that leave docs/, and expand table placeholders."""
    page_dir = posixpath.dirname(page.file.src_uri)
    docs = Path(config["docs_dir"]).resolve()

    def repl(match: re.Match) -> str:
        bang, label, target = match.groups()
        if bang or re.match(r"[a-z]+:", target) or target.startswith("#"):
            return match.group(0)
        path = target.partition("#")[0]
        resolved = (docs / page_dir / path).resolve()
        if resolved.is_relative_to(docs):
            return match.group(0)
        page_target = outside_link(ROOT, docs / page_dir / target)
        if page_target is None:
            raise PluginError(
                f"{page.file.src_uri}: link to {target!r} leaves docs/ and no page carries it"
            )
        return f"[{label}]({relative(page_dir, page_target)})"

    markdown = LINK.sub(repl, markdown)
    if "<!-- table: heterogeneity-priors -->" in markdown:
        from tables import heterogeneity_prior_table

        markdown = markdown.replace(
            "<!-- table: heterogeneity-priors -->", heterogeneity_prior_table()
        )
    return markdown

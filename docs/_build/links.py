"""Where a repository file that lives outside ``docs/`` is shown on the site.

The Markdown in ``docs/`` (``index.md``, the generated ``ketamine.md``) links to files
such as ``../data/README.md`` and ``../models/oud_abstinence.toml`` so that it reads well
on a code host; the site carries those files as pages (``reference/data.md``,
``reference/specs.md``), and the build rewrites the links to them.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

# repository path -> page of the site (relative to docs/)
PAGES = {
    "README.md": "getting-started.md",
    "data/README.md": "reference/data.md",
    "models/README.md": "reference/specs.md",
}


def outside_link(root: Path, target: Path | str) -> str | None:
    """Return the docs-relative page for a repository file, or None if it has none.

    ``target`` may carry an ``#anchor``; a spec (``models/NAME.toml``) maps to its
    section of the specs page.
    """
    path, _, anchor = str(target).partition("#")
    rel = Path(os.path.normpath(path)).resolve().relative_to(root.resolve()).as_posix()
    if rel.startswith("docs/"):
        page = rel.removeprefix("docs/")
    elif rel in PAGES:
        page = PAGES[rel]
    elif rel.startswith("models/") and rel.endswith(".toml"):
        return "reference/specs.md#" + posixpath.basename(rel).removesuffix(".toml")
    else:
        return None
    return page + (f"#{anchor}" if anchor else "")


def relative(page_dir: str, docs_target: str) -> str:
    """A link from a page in ``page_dir`` (docs-relative) to ``docs_target``."""
    path, sep, anchor = docs_target.partition("#")
    return posixpath.relpath(path, page_dir or ".") + sep + anchor

"""The ketamine page's command line.

``python -m examples.ketamine [--out PAGE] [--draws N --tune N --chains N] [--no-robustness]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .run import make_page

DEFAULT_PAGE = Path(__file__).resolve().parents[2] / "docs" / "ketamine.md"


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and write the page."""
    parser = argparse.ArgumentParser(
        prog="python -m examples.ketamine",
        description="Fit the bundled ketamine specs and write the page and its figures.",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_PAGE, help="the Markdown page")
    for key in ("draws", "tune", "chains"):
        parser.add_argument(f"--{key}", type=int, help=f"{key} for every fit (default: the specs')")
    parser.add_argument(
        "--no-robustness",
        action="store_true",
        help="skip the robustness refits (the page's section 4, the slowest part)",
    )
    args = parser.parse_args(argv)
    sampler = {k: getattr(args, k) for k in ("draws", "tune", "chains") if getattr(args, k)}
    make_page(args.out, sampler=sampler or None, robustness=not args.no_robustness)


if __name__ == "__main__":
    main()

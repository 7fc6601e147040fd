"""Run the bayeskit command line from a checkout: ``python cli.py --help``.

The command line itself lives in :mod:`bayeskit.cli` (installed as the ``bayeskit``
console script); this file only runs it, so there is one source of truth.
"""

from bayeskit.cli import main

if __name__ == "__main__":
    main()

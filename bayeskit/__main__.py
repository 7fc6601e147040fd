"""``python -m bayeskit`` runs the command line."""

from bayeskit.cli import main

main()

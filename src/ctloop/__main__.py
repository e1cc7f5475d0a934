"""``python -m ctloop`` runs the command line."""

from ctloop.cli import main

main()

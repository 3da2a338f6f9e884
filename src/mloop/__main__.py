"""``python -m mloop`` runs the command line."""

from mloop.cli import main

main()

"""`python -m runner` hands off to the command line."""

from runner.cli import main

main()

"""`python -m runner` hands off to the command line."""

from runner.cli.commands import main

main()

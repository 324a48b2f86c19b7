"""`python -m runner` hands off to the command line."""

from .cli import main

main()

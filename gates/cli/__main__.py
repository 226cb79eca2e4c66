"""``python -m gates.cli``."""

from gates.cli.main import main

main()

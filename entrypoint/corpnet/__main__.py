"""``python -m corpnet``."""

from corpnet.cli import main

main()

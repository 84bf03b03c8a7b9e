"""``python -m skvqad``: the command line (:mod:`skvqad.cli`)."""

from .cli import main

raise SystemExit(main())

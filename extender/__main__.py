"""``python -m extender`` is ``aim-extender``."""

from extender.cli import main

raise SystemExit(main())

"""``python -m deviceplugin`` = ``aim-deviceplugin``."""

from deviceplugin.cli import main

raise SystemExit(main())

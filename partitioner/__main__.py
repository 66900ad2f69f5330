"""``python -m partitioner``: the ``aim-partitioner`` command."""

import sys

from partitioner.cli import main

sys.exit(main())

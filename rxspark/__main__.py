"""``python -m rxspark``: the ``rxspark`` command (see :mod:`rxspark.cli`)."""

import sys

from .cli import main

sys.exit(main())

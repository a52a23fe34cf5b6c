"""``python -m extspec``: the command line (see :mod:`extspec.cli`)."""

import sys

from extspec.cli import main

sys.exit(main())

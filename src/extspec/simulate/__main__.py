"""``python -m extspec.simulate OUTDIR ...``: write a simulated DL3 data store."""

import sys

from .dl3 import main

sys.exit(main())

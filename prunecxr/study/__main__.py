"""``python -m prunecxr.study {packet,analyze,truth} ...``, same as ``python -m prunecxr study``."""

import sys

from .cli import main

sys.exit(main())

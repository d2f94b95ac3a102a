"""``python -m refmath``: the same as the ``refmath`` command."""

import sys

from .cli import main

sys.exit(main())

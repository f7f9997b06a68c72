"""``python -m fastface``: the same as the ``fastface`` command."""

import sys

from .cli import main

sys.exit(main())

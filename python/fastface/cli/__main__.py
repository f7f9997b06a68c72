"""``python -m fastface.cli``: the same as the ``fastface`` command."""

import sys

from . import main

sys.exit(main())

"""``python -m linnaeus.engine.cli``: the same as the ``linnaeus`` command."""

import sys

from linnaeus.engine.cli.main import main

sys.exit(main())

"""``python -m linnaeus.engine.cli.main``: the same as the ``linnaeus`` command."""

import sys

from linnaeus.engine.cli.main.main import main

sys.exit(main())

"""``python -m poisonlab``: the same command line as the ``poisonlab`` script."""

import sys

from .cli.main import main

sys.exit(main())

"""`python -m runner` is `pipe`."""

import sys

from runner.cli import main

sys.exit(main())

"""``python -m worker run``: what ``make run`` calls; see ``worker.dev.run``."""

import sys

from worker.dev.run import main

sys.exit(main())

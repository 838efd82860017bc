"""``python -m worker run``: what ``make run`` calls; see ``worker.run``."""

import sys

from worker.run import main

sys.exit(main())

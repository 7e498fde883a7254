"""`python -m offline.monitoring`: `promote monitor` (`offline.monitoring.loop`)."""

import sys

from offline.monitoring.loop import main

if __name__ == "__main__":
    sys.exit(main())

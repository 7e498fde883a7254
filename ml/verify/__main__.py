"""`python -m ml.verify`: prove a promoted commit in staging (`ml.verify.cli`)."""

import sys

from ml.verify.cli import main

if __name__ == "__main__":
    sys.exit(main())

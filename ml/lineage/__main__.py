"""`python -m ml.lineage`: the lineage chain of a stack's endpoint (`ml.lineage.cli`)."""

import sys

from ml.lineage.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""`python -m faabric` is the `faabric` command."""

import sys

from faabric.cli import main

sys.exit(main())

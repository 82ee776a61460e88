"""`python -m pytest_lossguard`: the `lossguard` command."""

import sys

from pytest_lossguard.cli import main

sys.exit(main())

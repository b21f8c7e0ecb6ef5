"""`python -m service.cli`: the `archivist` command."""

import sys

from service.cli import main

sys.exit(main())

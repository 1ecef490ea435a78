"""``python -m urgentbench.cli``: the ``urgentbench`` command."""

import sys

from urgentbench.cli.command import main

sys.exit(main())

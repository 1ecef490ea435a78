"""``python -m urgentbench.cli``: the ``urgentbench`` command."""

import sys

from urgentbench.cli.main import main

sys.exit(main())

"""``python -m bridge`` is ``wandb-bridge``."""

import sys

from bridge.cli import main

sys.exit(main())

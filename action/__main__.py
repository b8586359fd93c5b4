"""``python -m action``: run the action with the process environment."""

import os
import sys

from action.main import main

if __name__ == "__main__":
    sys.exit(main(os.environ))

"""``python -m checkpointkit.cli``: the ``checkpointkit`` command."""

from __future__ import annotations

import sys

from checkpointkit.cli import main

if __name__ == "__main__":
    sys.exit(main())

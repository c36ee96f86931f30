"""The ``slimline`` command (and ``python -m slimline``): :func:`slimline.cli.main` in a
process of its own, with the garbage collector set for a short-lived process."""

from __future__ import annotations

import gc
import sys
from typing import NoReturn


def run() -> NoReturn:
    # Importing the command makes tens of thousands of objects that live until the process
    # ends, and a build makes few reference cycles: the collector's passes over them are pure
    # cost (about a tenth of a rebuild served from the memo).  So it is off while the command
    # loads, and what loaded is frozen: left out of every later collection, the one at exit too.
    gc.disable()
    from slimline.cli import main

    gc.freeze()
    gc.enable()
    sys.exit(main())


if __name__ == "__main__":
    run()

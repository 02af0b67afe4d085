"""Entry point of ``python -m etl_runtime``, the same command line as ``etl-runtime``."""

import sys

from etl_runtime.cli import main

sys.exit(main())

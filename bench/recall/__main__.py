"""``python -m bench.recall``: see bench/recall/run.py."""
import sys

from .run import main

sys.exit(main())

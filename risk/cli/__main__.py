"""`python -m risk.cli …`, as `risk …`."""
import sys

from risk.cli import main

sys.exit(main())

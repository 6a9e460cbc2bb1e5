"""``python -m bruno_memory.cli``."""

from bruno_memory.cli import main

raise SystemExit(main())

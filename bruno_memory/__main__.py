"""``python -m bruno_memory``: the ``bruno-memory`` command."""

from bruno_memory.cli import main

raise SystemExit(main())

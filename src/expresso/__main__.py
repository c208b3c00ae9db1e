"""``python -m expresso`` is the same program as the ``expresso`` command."""

from .cli import main

raise SystemExit(main())

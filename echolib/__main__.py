"""Allow ``python -m echolib``."""

from echolib.cli import main

raise SystemExit(main())

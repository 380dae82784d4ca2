"""``python -m ssmred_app ...`` runs the ``ssmred`` command."""

import sys

from ssmred_app.cli import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

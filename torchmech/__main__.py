"""``python -m torchmech`` runs the ``torchmech`` command."""

import sys

from torchmech.cli import main

if __name__ == "__main__":  # not when imported (e.g. by pytest --doctest-modules)
    sys.exit(main())

"""``python -m torchmech`` runs the ``torchmech`` command."""

import sys

from torchmech.cli import main

sys.exit(main())

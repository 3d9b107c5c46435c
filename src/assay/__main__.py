"""``python -m assay`` works like the ``assay`` command."""

from assay.cli import main

main()

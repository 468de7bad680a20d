"""``python -m ltzoo.cli ...`` (as torchrun runs it): the ``ltzoo`` command."""
import sys

from ltzoo.cli import main

sys.exit(main())

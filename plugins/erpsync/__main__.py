"""``python -m erpsync``: check schemes and see what they post, without a scheduler (see ``cli``)."""

import sys

from erpsync.cli import main

sys.exit(main())

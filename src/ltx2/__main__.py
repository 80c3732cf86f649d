"""`python -m ltx2` runs the ltx2 command; `torchrun --nproc-per-node N -m ltx2 generate ...` shares it."""

import sys

from .cli import main

sys.exit(main())

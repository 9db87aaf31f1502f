import sys

from hardening.cli import main

sys.exit(main())

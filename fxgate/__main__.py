import sys

from fxgate.cli.main import main

sys.exit(main())

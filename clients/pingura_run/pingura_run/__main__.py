import sys

from pingura_run.wrapper import main

sys.exit(main())

"""``python -m vggcourse``: the course's command line, defined in ``vggcourse.cli``."""

import sys

from vggcourse.cli import main

if __name__ == "__main__":
    sys.exit(main())

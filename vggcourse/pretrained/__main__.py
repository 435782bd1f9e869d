"""``python -m vggcourse.pretrained``, defined in ``vggcourse.pretrained.main``."""

import sys

from vggcourse.pretrained import main

if __name__ == "__main__":
    sys.exit(main())

"""VetBook: the booking service of a pet-clinic platform."""

import os

# Piccolo finds its engine through this module path, whatever the working directory.
os.environ.setdefault("PICCOLO_CONF", "web.core.piccolo_conf")

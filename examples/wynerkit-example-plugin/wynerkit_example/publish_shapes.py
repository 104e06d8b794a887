"""``python -m wynerkit_example.publish_shapes FOLDER``: write the shapes-pairs files as they are published."""

from __future__ import annotations

import sys
from pathlib import Path

from wynerkit_example.shapes_files import write_shapes_files

if __name__ == "__main__":
    for path in write_shapes_files(Path(sys.argv[1])):
        print(path)

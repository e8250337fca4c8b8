"""`python server.py [--config models.toml] [--port 8000]`: the same as `raner-pool serve`."""

import sys

from raner_pool.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))

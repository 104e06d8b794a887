"""``python -m wynerkit`` (also what torchrun launches)."""

from wynerkit.cli.app import main

if __name__ == "__main__":
    main()

"""``python -m wynerkit`` (also what torchrun launches)."""

from wynerkit.cli import main

if __name__ == "__main__":
    main()

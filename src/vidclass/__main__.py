"""`python -m vidclass` (also what `torchrun -m vidclass` runs)."""

from vidclass.cli import main

if __name__ == "__main__":
    main()

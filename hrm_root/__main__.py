"""`python -m hrm ...` (and `torchrun -m hrm ...`) runs the command line."""
from hrm.cli.app import main

if __name__ == "__main__":
    main()

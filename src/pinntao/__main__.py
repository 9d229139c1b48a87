"""Entry point: ``python -m pinntao -pinn_problem poisson2d -tao_type nls``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())

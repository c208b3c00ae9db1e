"""Run every benchmark in one process session: `python -m benchmarks` (or `make bench`)."""

from . import cli_startup, epoch_time

cli_startup.main()
print()
epoch_time.main()

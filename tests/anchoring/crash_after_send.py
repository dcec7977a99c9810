"""`python tests/anchoring/crash_after_send.py [anchor args]`: the cron entrypoint, killed right after it sends its
first transaction (os._exit, so nothing is recorded and no cleanup runs), as a crash between send and record."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.anchoring import main  # noqa: E402

CRASH_EXIT_CODE = 86


def _die(commitment, tx_hash):
    sys.stdout.flush()
    os._exit(CRASH_EXIT_CODE)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], after_send=_die))

"""gunicorn with the transparency-log write replaced by a no-op: the B side of bench/tlog.py's ingest A/B.

Patched in the master before workers fork, so every worker runs ingest exactly as shipped minus
`plan_log_growth` (no log write). Benchmarks only; never a way to run the sequencer.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)  # app.metrics opens its files on import

import app.services.ingest as ingest  # noqa: E402

ingest.plan_log_growth = lambda *args, **kwargs: None

from gunicorn.app.wsgiapp import run  # noqa: E402

if __name__ == "__main__":
    sys.exit(run())

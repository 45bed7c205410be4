"""``python -m alignment_trainer.cli``: the trainer's documented command line (``run``, ``export``, ``tokenizer``),
kept at this path for ``accelerate launch -m alignment_trainer.cli`` and every script that runs it. The
implementation is jobs/cli.py (docs/architecture.md).
"""

import sys

from alignment_trainer.jobs.cli import main

if __name__ == "__main__":
    sys.exit(main())

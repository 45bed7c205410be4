"""Durable job lifecycle around training.runner: the job manager's queue and worker (manager.py), the job database
(store.py), the command line that runs one job (cli.py), the ``accelerate launch`` launcher that follows a CLI run
(launcher.py), and the files through which the two talk (layout.py) (docs/architecture.md)."""

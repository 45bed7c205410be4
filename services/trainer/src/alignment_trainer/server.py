"""``python -m alignment_trainer.server``: the trainer's gRPC server, kept at this path for the Dockerfile's
ENTRYPOINT, the nx ``serve`` target, the stack, the pyproject script and the k8s GPU Job (which calls ``main()``).
The implementation, with its configuration, is api/server.py (docs/deploy.md).
"""

from alignment_trainer.api import server as _server


def main() -> int:
    """Runs the server until SIGTERM or SIGINT (api/server.py main)."""
    return _server.main()


if __name__ == "__main__":
    raise SystemExit(main())

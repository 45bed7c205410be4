"""Python client of the alignment coordinator (proto/alignment/v1/coordinator.proto): see client.py."""

from alignment_client.client import DEFAULT_ADDRESS, Client, ClientError, channel_credentials
from alignment_client.run_file import RunFile, RunFileError, load_run_file

__all__ = ["DEFAULT_ADDRESS", "Client", "ClientError", "channel_credentials", "RunFile", "RunFileError", "load_run_file"]

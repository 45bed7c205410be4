"""The trainer's gRPC boundary: the alignment.v1 contracts (contracts.py), the Trainer server (server.py) and its
servicer (servicer.py), JobSpec parsing into config.JobConfig (jobspec.py), and the one outgoing call, the DroSolver
client (dro_client.py) that W-DRO jobs use as their adversary (docs/architecture.md)."""

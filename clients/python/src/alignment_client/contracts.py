"""The alignment.v1 contracts as Python modules, generated from proto/ into _gen/ by the project's codegen
(``npx nx run python-client:codegen``, i.e. services/trainer/scripts/codegen.sh with this package's directory).

Import them from here (``from alignment_client.contracts import coordinator_pb2``); they are the same module
objects as ``alignment_client._gen.alignment.v1.*``. The client's own messages (Run, RunSpec, WatchRunResponse...)
are these classes, typed by the generated .pyi stubs.
"""

try:
    from alignment_client._gen.alignment.v1 import (
        common_pb2,
        coordinator_pb2,
        coordinator_pb2_grpc,
        judge_pb2,
        judge_pb2_grpc,
    )
except ModuleNotFoundError as err:  # only without codegen
    if err.name is not None and err.name.startswith("alignment_client._gen"):
        raise ModuleNotFoundError(
            "alignment_client._gen is missing: generate the stubs with `npx nx run python-client:codegen` "
            "before importing or installing the package from a checkout",
            name=err.name,
        ) from err
    raise

__all__ = ["common_pb2", "coordinator_pb2", "coordinator_pb2_grpc", "judge_pb2", "judge_pb2_grpc"]

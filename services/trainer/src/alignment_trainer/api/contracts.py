"""The alignment.v1 contracts as Python modules, generated from proto/ by scripts/codegen.sh into _gen/.

Import them from here (``from alignment_trainer.api.contracts import trainer_pb2``) or directly from
``alignment_trainer._gen.alignment.v1``; both are the same module objects. codegen.sh rewrites protoc's
``from alignment.v1 import …`` imports to the package-qualified name, so each generated module exists under exactly
one name and nothing touches sys.path.
"""

try:
    from alignment_trainer._gen.alignment.v1 import (
        common_pb2,
        dro_pb2,
        dro_pb2_grpc,
        trainer_pb2,
        trainer_pb2_grpc,
    )
except ModuleNotFoundError as err:  # pragma: no cover - only without codegen
    if err.name is not None and err.name.startswith("alignment_trainer._gen"):
        raise ModuleNotFoundError(
            "alignment_trainer._gen is missing: generate the stubs with `npx nx run trainer:codegen` "
            "(or bash services/trainer/scripts/codegen.sh)",
            name=err.name,
        ) from err
    raise

TRAINER_SERVICE = trainer_pb2.DESCRIPTOR.services_by_name["Trainer"].full_name  # "alignment.v1.Trainer"

__all__ = [
    "TRAINER_SERVICE",
    "common_pb2",
    "dro_pb2",
    "dro_pb2_grpc",
    "trainer_pb2",
    "trainer_pb2_grpc",
]

"""Server reflection as grpc.reflection.v1 and v1alpha, so grpcurl and buf succeed at once.

grpcio-reflection 1.85 ships v1alpha only, while buf (and newer grpcurl) ask for
v1 first. The two protos are wire-identical apart from their package, so the
same servicer answers under both names, and the v1 descriptor is derived from
the v1alpha one and added to the pool: clients can describe v1 as well.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2

V1ALPHA_PACKAGE = "grpc.reflection.v1alpha"
V1_PACKAGE = "grpc.reflection.v1"
V1_FILE = "grpc/reflection/v1/reflection.proto"
V1_SERVICE_NAME = f"{V1_PACKAGE}.ServerReflection"
V1ALPHA_SERVICE_NAME: str = reflection.SERVICE_NAME


def _v1_file() -> descriptor_pb2.FileDescriptorProto:
    """The v1alpha file with every name moved to the v1 package."""
    file = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(file)
    file.name = V1_FILE
    file.package = V1_PACKAGE
    file.ClearField("options")  # v1alpha's java_package and the like
    old, new = f".{V1ALPHA_PACKAGE}.", f".{V1_PACKAGE}."
    # The file's messages have no nested types; their fields name others by full name.
    for message in file.message_type:
        for field in message.field:
            if field.HasField("type_name"):  # message and enum fields only
                field.type_name = field.type_name.replace(old, new)
    for service in file.service:
        for method in service.method:
            method.input_type = method.input_type.replace(old, new)
            method.output_type = method.output_type.replace(old, new)
    return file


def _add_v1_descriptor(pool: descriptor_pool.DescriptorPool) -> None:
    try:
        pool.FindFileByName(V1_FILE)
    except KeyError:
        pool.Add(_v1_file())


def enable_reflection(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    """Serve reflection for `service_names` (and itself, both versions) on `server`."""
    pool = descriptor_pool.Default()
    _add_v1_descriptor(pool)
    names = [*service_names, V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME]
    # `aio` is in reflection's __all__, defined behind a version check mypy does not follow.
    servicer = reflection.aio.ReflectionServicer(names, pool=pool)  # type: ignore[attr-defined]
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    for service in (V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME):
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, {"ServerReflectionInfo": handler}),)
        )

"""Internal identities for work done after the request (the index outbox): minted fresh by the
auth service for each attempt, never the request's token, which lives at most 60 s."""

from __future__ import annotations

from pathlib import Path

import grpc

from inkwell.auth.v1 import auth_service_pb2 as auth_pb
from inkwell.auth.v1 import auth_service_pb2_grpc as auth_grpc
from libs.runtime import service_key
from libs.runtime.client import call_timeout
from libs.runtime.errors import from_rpc_error


class MintFailed(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class ServiceIdentities:
    def __init__(
        self, channel: grpc.aio.Channel, configured_key: str, data_dir: Path, timeout_s: float, actor: str
    ) -> None:
        self.stub = auth_grpc.AuthServiceStub(channel)
        self.configured_key = configured_key
        self.data_dir = data_dir
        self.timeout_s = timeout_s
        self.actor = actor

    async def mint(self, user_id: str, org_id: str, audiences: tuple[str, ...]) -> str:
        # Read per attempt: the auth service may create the key file after the gateway started.
        key = service_key.read_service_key(self.configured_key, self.data_dir)
        if key is None:
            raise MintFailed(
                "SERVICE_KEY_MISSING",
                f"no INKWELL_SERVICE_KEY and no {service_key.key_file(self.data_dir)}",
            )
        request = auth_pb.MintServiceIdentityRequest(
            user_id=user_id, org_id=org_id, audiences=list(audiences), actor=self.actor
        )
        try:
            reply = await self.stub.MintServiceIdentity(
                request, timeout=call_timeout(self.timeout_s), metadata=[(service_key.METADATA_KEY, key)]
            )
        except grpc.aio.AioRpcError as exc:
            remote = from_rpc_error(exc)
            reason = remote.reason
            if remote.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                reason = "AUTH_UNAVAILABLE"
            raise MintFailed(reason, remote.message) from None
        return str(reply.internal_token)

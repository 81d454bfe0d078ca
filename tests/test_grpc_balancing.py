"""Servers age out connections so clients re-resolve DNS and new replicas behind a headless Service get calls."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.runtime import client
from libs.runtime.server import start_server
from libs.runtime.settings import BaseServiceSettings, ConfigError, load


async def test_server_closes_a_connection_at_its_max_age() -> None:
    running = await start_server(
        domain="test",
        service_names=["test.v1.Test"],
        register=lambda s: None,
        host="127.0.0.1",
        port=0,
        max_connection_age_s=1.0,
    )
    channel = client.open_channel(f"127.0.0.1:{running.port}")
    try:
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert channel.get_state() == grpc.ChannelConnectivity.READY
        # GOAWAY after ~1 s (+/- jitter): the channel leaves READY and would re-resolve on the next call.
        await asyncio.wait_for(channel.wait_for_state_change(grpc.ChannelConnectivity.READY), 10)
    finally:
        await channel.close()
        await running.stop()


def test_max_connection_age_is_a_validated_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INKWELL_GRPC_MAX_CONNECTION_AGE_S", "120")
    assert load(BaseServiceSettings).grpc_max_connection_age_s == 120
    monkeypatch.setenv("INKWELL_GRPC_MAX_CONNECTION_AGE_S", "0")
    with pytest.raises(ConfigError, match="INKWELL_GRPC_MAX_CONNECTION_AGE_S"):
        load(BaseServiceSettings)


def test_clients_balance_round_robin_over_every_resolved_address() -> None:
    service_config = json.loads(str(dict(client.CHANNEL_OPTIONS)["grpc.service_config"]))
    assert service_config["loadBalancingConfig"] == [{"round_robin": {}}]

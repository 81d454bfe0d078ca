"""The plan budget is validated at startup: it must fit inside the frontend's 60 s."""

from __future__ import annotations

import pytest

from gateway.settings import GatewaySettings
from libs.runtime.settings import ConfigError, load


@pytest.mark.parametrize("value", ["60", "75", "0", "-1"])
def test_plan_budget_outside_the_frontends_limit_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("INKWELL_PLAN_BUDGET_S", value)
    with pytest.raises(ConfigError) as refused:
        load(GatewaySettings)
    assert "INKWELL_PLAN_BUDGET_S" in str(refused.value) and "below 60" in str(refused.value)


def test_plan_budget_defaults_to_45_s(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INKWELL_PLAN_BUDGET_S", raising=False)
    assert load(GatewaySettings).plan_budget_s == 45.0
    monkeypatch.setenv("INKWELL_PLAN_BUDGET_S", "59.5")
    assert load(GatewaySettings).plan_budget_s == 59.5

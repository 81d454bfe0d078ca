"""What every route shares: backends, the session cache, and the one auth dependency."""

from typing import Annotated

import grpc
from fastapi import Depends, Request

from gateway.accounting import READ_METHODS, USER_KEY, RequestAccounting
from gateway.auth import AuthenticatedUser, Authenticator
from gateway.backends import Backends
from gateway.loop_watch import SERVING, LoopWatch
from gateway.ratelimit import CHARGED_KEY, FairShare, charge
from gateway.read_cache import ReadCache
from gateway.service_identity import ServiceIdentities
from gateway.session_cache import SessionCache
from gateway.settings import GatewaySettings
from gateway.workflow.db import database_url, open_engine
from gateway.workflow.outbox import IndexOutbox
from gateway.workflow.outbox_store import OutboxStore
from gateway.workflow.planner import Planner
from gateway.workflow.store import WorkflowStore
from gateway.workflow.subscriptions import Plans, load_plans
from gateway.workflow.today import TodayWorkflow
from libs.clients.index import IndexClient
from libs.clients.names import AUTH_SERVICE_NAME, INDEX_SERVICE_NAME, LLM_SERVICE_NAME


class GatewayState:
    """Everything the routes share. Channels are opened in the lifespan, on the serving loop."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.backends = Backends()
        self.session_cache = SessionCache(settings.session_cache_size)
        self._authenticator: Authenticator | None = None
        self._index: IndexClient | None = None
        self._today: TodayWorkflow | None = None
        self.outbox: IndexOutbox | None = None
        self.identities: ServiceIdentities | None = None
        self.accounting = RequestAccounting()
        self.fair_share = FairShare(settings.rate_per_s, settings.rate_burst, settings.rate_max_delay_s)
        self.read_cache = ReadCache(settings.read_cache_ttl_s)
        self.loop_watch = LoopWatch(settings.loop_block_warn_ms)
        self.plans: Plans = load_plans(settings.plans_file)
        self.llm_channel: grpc.aio.Channel | None = None
        self.draining = False

    def begin_drain(self) -> None:
        """SIGTERM arrived: /readyz answers 503 from now on; requests are still served."""
        self.draining = True

    def open(self) -> None:
        auth = self.backends.add("auth", self.settings.auth_address, AUTH_SERVICE_NAME)
        self._authenticator = Authenticator(auth.channel, self.session_cache, self.settings.auth_timeout_s)
        index = self.backends.add("index", self.settings.index_address, INDEX_SERVICE_NAME)
        self._index = IndexClient(index.channel, self.settings.index_timeout_s)
        self.identities = ServiceIdentities(
            auth.channel,
            self.settings.service_key,
            self.settings.data_dir,
            self.settings.auth_timeout_s,
            actor="gateway-outbox",
        )
        llm = self.backends.add("llm", self.settings.llm_address, LLM_SERVICE_NAME)
        self.llm_channel = llm.channel

    async def open_database(self) -> None:
        engine = await open_engine(database_url(self.settings.database_url, self.settings.data_dir))
        self.engine = engine
        self.store = WorkflowStore(engine)
        assert self.llm_channel is not None
        planner = Planner(self.llm_channel, self.settings.pillars, self.settings.plan_budget_s)
        assert self.identities is not None
        self.outbox_store = OutboxStore(engine)
        outbox = IndexOutbox(
            self.outbox_store,
            self.index,
            self.identities,
            base_backoff_s=self.settings.outbox_backoff_s,
            max_backoff_s=self.settings.outbox_backoff_max_s,
            on_failure=lambda reason: self.accounting.enqueue_failures.update([reason]),
        )
        self.outbox = outbox
        self._today = TodayWorkflow(self.store, planner, on_committed=outbox.wake)

    @property
    def today(self) -> TodayWorkflow:
        if self._today is None:
            raise RuntimeError("gateway backends are not open: the app must run inside its lifespan")
        return self._today

    @property
    def index(self) -> IndexClient:
        if self._index is None:
            raise RuntimeError("gateway backends are not open: the app must run inside its lifespan")
        return self._index

    @staticmethod
    def of(request: Request) -> "GatewayState":
        state: GatewayState = request.app.state.inkwell
        return state

    @property
    def authenticator(self) -> Authenticator:
        if self._authenticator is None:
            raise RuntimeError("gateway backends are not open: the app must run inside its lifespan")
        return self._authenticator


async def current_user(request: Request) -> AuthenticatedUser:
    """The one auth path: every protected route depends on this. A request the fair-share
    middleware could not charge (its token was not in the session cache yet) is charged here."""
    state: GatewayState = request.app.state.inkwell
    user = await state.authenticator(request)
    scope_state = request.scope.setdefault("state", {})
    route = getattr(request.scope.get("route"), "path", "unmatched")
    SERVING.set(f"{request.method} {route}")
    scope_state[USER_KEY] = user.user_id  # for request accounting
    if request.method not in READ_METHODS:  # a write: the user's next poll must not be stale
        state.read_cache.forget(user.user_id)
    if not scope_state.get(CHARGED_KEY):
        scope_state[CHARGED_KEY] = True
        await charge(state.fair_share, user.user_id, route)
    return user


CurrentUser = Annotated[AuthenticatedUser, Depends(current_user)]

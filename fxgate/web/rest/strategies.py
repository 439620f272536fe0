"""``/strategies`` (seed 003): define and list your own strategies.

Viewers may read their own; creating one needs the trader role, since a strategy is
the first step towards orders placed in the user's name.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from fxgate.domain.roles import Role
from fxgate.services.ports.store.records import Doc
from fxgate.web.rest import registry as op
from fxgate.web.rest.market import MarketHandler, check_symbols
from fxgate.web.rest.models import JsonObject, PageQuery, RequestModel, ResponseModel


class RiskManagement(RequestModel):
    max_risk_per_trade: float = Field(ge=0, description="Percent of equity risked per trade.")
    max_daily_loss: float = Field(ge=0, description="In the account currency.")
    stop_loss: float = Field(ge=0, description="Distance in pips.")
    take_profit: float = Field(ge=0, description="Distance in pips.")


class StrategyCreate(RequestModel):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field("", max_length=2000)
    type: Literal["manual", "automated"]
    symbols: list[str] = Field(min_length=1, max_length=50)
    risk_management: RiskManagement
    parameters: JsonObject = Field(default_factory=dict)


class RiskManagementOut(ResponseModel):
    max_risk_per_trade: float
    max_daily_loss: float
    stop_loss: float
    take_profit: float


class PerformanceOut(ResponseModel):
    total_trades: int
    win_rate: float
    total_pnl: float = Field(alias="totalPnL")
    sharpe_ratio: float


class StrategyOut(ResponseModel):
    id: str
    name: str
    description: str
    type: Literal["manual", "automated"]
    status: Literal["active", "inactive", "paused"]
    symbols: list[str]
    risk_management: RiskManagementOut
    parameters: JsonObject
    performance: PerformanceOut
    created_at: str
    updated_at: str


class StrategyCreated(ResponseModel):
    id: str
    name: str
    status: Literal["active", "inactive", "paused"]
    created_at: str


def strategy_out(doc: Doc) -> StrategyOut:
    return StrategyOut.model_validate(doc)


class StrategiesHandler(MarketHandler):
    path = "/strategies"
    tag = "strategies"

    @op.get(
        summary="Your strategies, oldest first",
        query=PageQuery,
        response=StrategyOut,
        paginated=True,
    )
    async def list_strategies(self, query: PageQuery) -> op.Page[StrategyOut]:
        docs = await self.ctx.strategies.list(self.user_id)
        page = docs[query.offset : query.offset + query.limit]
        return op.Page([strategy_out(d) for d in page], total=len(docs))

    @op.post(
        summary="Define a strategy (it starts inactive)",
        body=StrategyCreate,
        response=StrategyCreated,
        role=Role.TRADER,
        status=201,
    )
    async def create_strategy(self, body: StrategyCreate) -> StrategyCreated:
        symbols = check_symbols(self.market(), body.symbols, "symbols")
        risk: dict[str, Any] = body.risk_management.model_dump(by_alias=True)
        doc = await self.ctx.strategies.create(
            self.user_id,
            name=body.name,
            description=body.description,
            kind=body.type,
            symbols=list(dict.fromkeys(symbols)),
            risk_management=risk,
            parameters=body.parameters,
        )
        return StrategyCreated.model_validate(doc)


class StrategyHandler(MarketHandler):
    path = "/strategies/{strategy_id}"
    tag = "strategies"

    @op.get(summary="One of your strategies", response=StrategyOut, errors=(404,))
    async def show_strategy(self, strategy_id: str) -> StrategyOut:
        return strategy_out(await self.ctx.strategies.get(self.user_id, strategy_id))


HANDLERS: tuple[type[MarketHandler], ...] = (StrategiesHandler, StrategyHandler)

"""The candles of a request that carries none, as the market handler takes them: the first of
the configured sources with candles for the product (``sources.FirstOf``), with the granularity
they stand for and the source's name."""

from __future__ import annotations

from signalsmith.market.candles import parse_granularity
from signalsmith.market.insight import Candles
from signalsmith.market.sources import CandleSource, FirstOf


class SourceFinder:
    """Asks ``sources`` in order (a file, a candle stream, an exchange); see ``FirstOf``."""

    def __init__(self, *sources: CandleSource) -> None:
        self._chain = FirstOf(*sources)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(source.name for source in self._chain.sources)

    async def find(self, product_id: str, granularity: str, lookback: int) -> Candles:
        seconds = parse_granularity(granularity)
        found = await self._chain.find(product_id, granularity, lookback)
        return Candles(found.rows, found.source, seconds)

    async def aclose(self) -> None:
        await self._chain.aclose()

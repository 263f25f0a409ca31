"""Rebuild ``src/signalsmith/data/symbols.tsv`` from the SEC company-ticker list plus major coins.

Usage: ``python scripts/build_symbols.py [SEC_JSON] [--output PATH]``.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SEC_PATH = REPO_ROOT.parent / "shared" / "data" / "sec_company_tickers.json"
DEFAULT_OUTPUT = REPO_ROOT / "src" / "signalsmith" / "data" / "symbols.tsv"

# Whatever the SEC lists is accepted only if it looks like a ticker, so a malformed
# entry cannot smuggle a tab or newline into the shipped file.
_SYMBOL_SHAPE = re.compile(r"[A-Z0-9]{1,10}(?:-[A-Z0-9]{1,4})?")

# Coins that dominate crypto chatter. Where one of these is also an SEC ticker, the coin
# wins: BTC, ETH, XRP, AVAX, DOT and HBAR there are the trusts that hold the coin, and for
# LINK (Interlink), LTC (LTC Properties), TRX (TRX Gold), BCH (Banco de Chile), ATOM
# (Atomera), APT (Alpha Pro Tech) and SUI (Sun Communities) a "$LINK" or "SUI" in
# chatter is overwhelmingly about the coin, not the small cap or REIT.
CRYPTO_ASSETS: tuple[tuple[str, str], ...] = (
    ("AAVE", "Aave"),
    ("ADA", "Cardano"),
    ("ALGO", "Algorand"),
    ("APT", "Aptos"),
    ("ARB", "Arbitrum"),
    ("ATOM", "Cosmos"),
    ("AVAX", "Avalanche"),
    ("BCH", "Bitcoin Cash"),
    ("BNB", "BNB"),
    ("BONK", "Bonk"),
    ("BTC", "Bitcoin"),
    ("DAI", "Dai"),
    ("DOGE", "Dogecoin"),
    ("DOT", "Polkadot"),
    ("ETC", "Ethereum Classic"),
    ("ETH", "Ethereum"),
    ("FIL", "Filecoin"),
    ("HBAR", "Hedera"),
    ("ICP", "Internet Computer"),
    ("INJ", "Injective"),
    ("JUP", "Jupiter"),
    ("KAS", "Kaspa"),
    ("LINK", "Chainlink"),
    ("LTC", "Litecoin"),
    ("MATIC", "Polygon"),
    ("MKR", "Maker"),
    ("NEAR", "NEAR Protocol"),
    ("ONDO", "Ondo"),
    ("OP", "Optimism"),
    ("PEPE", "Pepe"),
    ("POL", "Polygon Ecosystem Token"),
    ("RENDER", "Render"),
    ("SHIB", "Shiba Inu"),
    ("SOL", "Solana"),
    ("SUI", "Sui"),
    ("TAO", "Bittensor"),
    ("TIA", "Celestia"),
    ("TON", "Toncoin"),
    ("TRX", "TRON"),
    ("UNI", "Uniswap"),
    ("USDC", "USD Coin"),
    ("USDT", "Tether"),
    ("WIF", "dogwifhat"),
    ("XLM", "Stellar"),
    ("XMR", "Monero"),
    ("XRP", "XRP"),
    ("XTZ", "Tezos"),
)


def _clean_name(title: str) -> str:
    return " ".join(title.split())


def sec_symbols(entries: Mapping[str, Mapping[str, object]]) -> dict[str, str]:
    """Map each SEC ticker to its company title; the first listing of a ticker wins."""
    symbols: dict[str, str] = {}
    for key, entry in entries.items():
        ticker = str(entry.get("ticker", "")).strip().upper()
        if not _SYMBOL_SHAPE.fullmatch(ticker):
            raise ValueError(f"SEC entry {key!r} has an unusable ticker {ticker!r}")
        # The SEC orders its list by size, so on a duplicate the bigger company keeps it.
        symbols.setdefault(ticker, _clean_name(str(entry.get("title", ""))) or ticker)
    return symbols


# Exchange-traded funds are not in the SEC company list, yet chatter names them all the time.
# Added where the SEC has no such symbol; an SEC company with the same symbol keeps it.
ETFS: tuple[tuple[str, str], ...] = (
    ("ARKK", "ARK Innovation ETF"),
    ("DIA", "SPDR Dow Jones Industrial Average ETF"),
    ("EEM", "iShares MSCI Emerging Markets ETF"),
    ("GDX", "VanEck Gold Miners ETF"),
    ("GLD", "SPDR Gold Shares"),
    ("HYG", "iShares iBoxx High Yield Corporate Bond ETF"),
    ("IWM", "iShares Russell 2000 ETF"),
    ("QQQ", "Invesco QQQ Trust"),
    ("SCHD", "Schwab US Dividend Equity ETF"),
    ("SLV", "iShares Silver Trust"),
    ("SMH", "VanEck Semiconductor ETF"),
    ("SOXL", "Direxion Daily Semiconductor Bull 3X Shares"),
    ("SOXS", "Direxion Daily Semiconductor Bear 3X Shares"),
    ("SPXL", "Direxion Daily S&P 500 Bull 3X Shares"),
    ("SPXS", "Direxion Daily S&P 500 Bear 3X Shares"),
    ("SPY", "SPDR S&P 500 ETF Trust"),
    ("SQQQ", "ProShares UltraPro Short QQQ"),
    ("TLT", "iShares 20+ Year Treasury Bond ETF"),
    ("TQQQ", "ProShares UltraPro QQQ"),
    ("USO", "United States Oil Fund"),
    ("UVXY", "ProShares Ultra VIX Short-Term Futures ETF"),
    ("VOO", "Vanguard S&P 500 ETF"),
    ("VTI", "Vanguard Total Stock Market ETF"),
    ("VXX", "iPath Series B S&P 500 VIX Short-Term Futures ETN"),
    ("XLE", "Energy Select Sector SPDR Fund"),
    ("XLF", "Financial Select Sector SPDR Fund"),
    ("XLK", "Technology Select Sector SPDR Fund"),
)


def build_rows(entries: Mapping[str, Mapping[str, object]]) -> list[tuple[str, str, str]]:
    """Sorted ``(symbol, name, asset_class)`` rows: ETFs, SEC equities over them, coins over all."""
    rows = {symbol: (name, "etf") for symbol, name in ETFS}
    rows.update({symbol: (name, "equity") for symbol, name in sec_symbols(entries).items()})
    rows.update({symbol: (name, "crypto") for symbol, name in CRYPTO_ASSETS})
    return [(symbol, name, kind) for symbol, (name, kind) in sorted(rows.items())]


def render(rows: Iterable[tuple[str, str, str]]) -> str:
    """Serialize rows as the TSV the package ships (no header, one symbol per line)."""
    return "".join(f"{symbol}\t{name}\t{kind}\n" for symbol, name, kind in rows)


def render_from_file(sec_path: Path) -> str:
    """Read the SEC JSON at ``sec_path`` and return the symbols file's full text."""
    entries = json.loads(sec_path.read_text(encoding="utf-8"))
    if not isinstance(entries, dict):
        raise TypeError(f"{sec_path} is not the SEC ticker object keyed by index")
    return render(build_rows(entries))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rebuild the shipped symbol list.")
    parser.add_argument("sec_json", nargs="?", type=Path, default=DEFAULT_SEC_PATH)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    text = render_from_file(args.sec_json)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {text.count(chr(10))} symbols to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

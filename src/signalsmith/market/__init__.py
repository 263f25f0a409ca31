"""The market pipeline's pure core: raw candles become a checked series, indicators, a trend."""

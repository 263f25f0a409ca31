"""LLM analysis: OpenAI-compatible providers, prompts, replies, limits and the fallback chain."""

"""The dashboard in a real headless Chromium."""

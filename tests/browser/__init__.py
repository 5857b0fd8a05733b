"""Browser tests: pages opened in a real headless Chromium (Debian's), checked with axe-core."""

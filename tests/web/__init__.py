"""Tests of the web side: API, ISP ticket links, tokens."""

"""Probes: measure links, routers and portals. A leaf: knows nothing of alerts or the web."""

"""Probes: measure links, routers and portals. A leaf package: it knows nothing of alerts or the web."""

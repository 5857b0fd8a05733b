"""The web side: /metrics, the JSON API and the public status page."""

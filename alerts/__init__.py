"""Alerts: judge link health and act on it. Sees result types only, never how they were measured."""

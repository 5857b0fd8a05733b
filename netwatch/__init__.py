"""NetWatch: network health monitor for Vietnam's commune Public Administration Service Centers."""

__version__ = "0.1.0"

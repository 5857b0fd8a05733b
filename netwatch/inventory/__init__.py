"""The inventory: what provincial IT staff configure, parsed once into frozen typed objects."""

from netwatch.inventory.divisions import CommuneInfo, Divisions
from netwatch.inventory.isolated import load_inventory_isolated
from netwatch.inventory.loader import ConfigError, ConfigIssue, load_inventory
from netwatch.inventory.models import Commune, Inventory, Link, Portal, Thresholds
from netwatch.inventory.secrets import Secret

__all__ = [
    "Commune",
    "CommuneInfo",
    "ConfigError",
    "ConfigIssue",
    "Divisions",
    "Inventory",
    "Link",
    "Portal",
    "Secret",
    "Thresholds",
    "load_inventory",
    "load_inventory_isolated",
]

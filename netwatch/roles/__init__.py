"""NetWatch's processes (issue 10): each role one module, started by `netwatch run --role`.

`probe` measures a shard of the plan and publishes on the bus (netwatch/roles/probe.py).
"""

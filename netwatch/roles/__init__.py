"""NetWatch's processes (issue 10): each role one module, started by `netwatch run --role`.

`probe` measures a shard of the plan and publishes on the bus (probe.py); `core` judges what the
bus carries and leads alerting by the bus lease (core.py); `web` serves the pages as a read
replica of the core, several on one port (web.py); without a role the supervisor starts a
private nats-server and all of them (supervisor.py).
"""

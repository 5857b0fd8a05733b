"""The message bus between NetWatch's processes: NATS JetStream (docs/bus.md).

server: the embedded nats-server; wire: the versioned observation format; streams: the stream,
the KV buckets, the publisher and the durable consumer; lease: the core's leader lease.
Imports netwatch.observations and the probes' result types, never the web or alerting.
"""

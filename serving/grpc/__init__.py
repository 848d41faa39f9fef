"""gRPC transport: servicers, converters, per-call handling, method table, server assembly."""

"""gRPC transport: servicers, converters, interceptors, server assembly."""

"""The HTTP transport: KServe V2 REST, the typed /v1 endpoints and the web page."""

"""The HTTP API: routes, authentication and RFC 9457 problem responses."""

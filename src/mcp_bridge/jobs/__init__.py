"""Jobs: the durable registry, the service the API calls, execution and dispatch."""

"""Gateway: the HTTP edge. Authenticates clients, validates input, calls the services."""

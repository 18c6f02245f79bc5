"""The gateway's HTTP routes, one module per resource; app.py includes each router."""

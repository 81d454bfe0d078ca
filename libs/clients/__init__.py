"""Clients of the internal services that callers (the gateway, the CLI) share."""

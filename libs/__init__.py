"""Libraries shared by the deployables. Nothing here is a process of its own; nothing here imports a service."""

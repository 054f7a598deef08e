"""The carrier service's outside world: the carriers' tracking APIs and the order system."""

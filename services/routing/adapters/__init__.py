"""Routing's view of the outside world: the order system (what a resolution action is checked against)."""

"""The intake service (see ../shared/MISSION.md); built by its own issue."""

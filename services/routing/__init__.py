"""The routing service (see ../shared/MISSION.md); built by its own issue."""

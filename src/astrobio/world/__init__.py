"""astrobio.world."""

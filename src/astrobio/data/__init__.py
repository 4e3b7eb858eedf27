"""astrobio.data."""

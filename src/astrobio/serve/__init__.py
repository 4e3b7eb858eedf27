"""astrobio.serve."""

"""astrobio.training."""

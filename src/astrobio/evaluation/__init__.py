"""astrobio.evaluation."""

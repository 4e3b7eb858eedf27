"""astrobio.models."""

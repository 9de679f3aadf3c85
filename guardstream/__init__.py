"""guardstream."""

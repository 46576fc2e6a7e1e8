"""The `por` command line."""

"""strangler proxy (data plane)."""

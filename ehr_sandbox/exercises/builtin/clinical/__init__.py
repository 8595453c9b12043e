"""Clinical MA exercises (issue 16)."""

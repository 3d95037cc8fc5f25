"""The zero-trust inference gateway: identity, limits, shields, verified models, audit, metrics."""

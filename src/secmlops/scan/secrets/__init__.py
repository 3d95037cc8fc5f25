"""scan/secrets layer."""

"""scan/deps layer."""

"""scan/data layer."""

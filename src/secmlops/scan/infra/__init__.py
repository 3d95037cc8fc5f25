"""scan/infra layer."""

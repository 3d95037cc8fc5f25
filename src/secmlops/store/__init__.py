"""Where evidence lives: content-addressed artifacts, the metadata database, the registry, the audit log."""

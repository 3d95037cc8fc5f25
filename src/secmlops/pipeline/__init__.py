"""The secured pipeline: stages with the user's own ML code, controls around them, gates between."""

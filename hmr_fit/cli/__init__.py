"""The ``hmr-fit`` command line."""

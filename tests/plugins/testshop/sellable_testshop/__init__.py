"""A tiny JSON shop (``server``) and its connector (``connector``), for daemon tests."""

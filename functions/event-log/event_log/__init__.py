"""event-log: a CloudEvents sink that logs each event and keeps the latest for ``GET /events``."""

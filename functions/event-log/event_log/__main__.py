"""``python -m event_log``: validate the environment, then serve."""

from event_log.app import main

if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m predict_on_event``: validate the environment, then serve."""

from predict_on_event.app import main

if __name__ == "__main__":
    raise SystemExit(main())

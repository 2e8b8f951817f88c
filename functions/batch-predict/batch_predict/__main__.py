"""``python -m batch_predict``: validate the environment, then serve."""

from batch_predict.app import main

if __name__ == "__main__":
    raise SystemExit(main())

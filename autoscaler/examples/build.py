"""Build the example model artefacts: the scikit-learn iris classifier.

``python -m autoscaler.examples.build --out DIR`` writes ``DIR/iris/model.joblib``, trained on
scikit-learn's bundled iris data (no download). It is idempotent: an existing file that loads and
predicts is left alone, so the demo can call it on every start.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

IRIS_DIR = "iris"
MODEL_FILE = "model.joblib"


def iris_model_path(out_dir: Path) -> Path:
    """Where ``build_iris`` writes the model under ``out_dir``."""
    return Path(out_dir) / IRIS_DIR / MODEL_FILE


def _loadable(path: Path) -> bool:
    import joblib

    try:
        model = joblib.load(path)
        model.predict([[6.8, 2.8, 4.8, 1.4]])
    except Exception:
        return False
    return True


def build_iris(out_dir: Path) -> tuple[Path, bool]:
    """Train and write the iris classifier; returns (path, built) where built is False on reuse."""
    import joblib
    from sklearn import datasets, svm

    path = iris_model_path(out_dir)
    if path.is_file() and _loadable(path):
        return path, False
    path.parent.mkdir(parents=True, exist_ok=True)
    iris = datasets.load_iris()
    clf = svm.SVC(gamma="scale")
    clf.fit(iris.data, iris.target)
    # Write to a temporary file and rename, so a concurrent reader never sees half a file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        joblib.dump(clf, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path, True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m autoscaler.examples.build", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", required=True, type=Path, help="directory to write models into")
    args = parser.parse_args(argv)
    path, built = build_iris(args.out)
    print(f"{'built' if built else 'kept'} {path}", file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Make the function's package importable as it is when deployed (its folder is the app root)."""

import sys
from pathlib import Path

FUNCTION_ROOT = str(Path(__file__).resolve().parents[1])
if FUNCTION_ROOT not in sys.path:
    sys.path.insert(0, FUNCTION_ROOT)

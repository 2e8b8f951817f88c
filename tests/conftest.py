"""Suite-wide test settings. Fixtures for one topic live in that topic's conftest.py."""

//! Cross-crate integration and interoperability suites (see `tests/tests/`).

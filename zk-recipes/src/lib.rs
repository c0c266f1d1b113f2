//! (being built)
#![deny(missing_docs)]

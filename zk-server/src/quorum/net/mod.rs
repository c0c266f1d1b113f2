//! Tokio wire layer (being built).

//! Ensemble: sans-IO leader election and atomic broadcast (being built).

//! Memory-mapped vector segments (see FORMAT.md).

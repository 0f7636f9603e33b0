//! Index directory: write path (add/delete/upsert/commit), read snapshots, the commit protocol.

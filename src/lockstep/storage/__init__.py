"""Persistent state: the metadata database, and the log and blob (snapshot, artifact) stores."""

"""Use cases behind the API: the only callers of the stores and of the Temporal client."""

"""The control plane (what `lockstep server` and an embedded CLI run, not the command itself,
which is `cli/serve.py`): home directory, embedded Temporal, pool workers, stores, API services."""

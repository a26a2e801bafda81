"""The control plane process: home directory, embedded Temporal, workers, API."""

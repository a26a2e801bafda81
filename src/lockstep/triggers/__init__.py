"""Triggers: what starts runs by itself. One module per source; each fires through the run
service (``services/run_launch``), so every fired run has its record and its cause."""

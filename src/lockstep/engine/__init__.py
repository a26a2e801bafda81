"""The deterministic side of lockstep on Temporal: plans, the interpreter workflows and the
data that crosses Temporal."""

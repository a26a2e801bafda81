"""The Temporal side of lockstep: plans, the interpreter workflow, and step activities."""

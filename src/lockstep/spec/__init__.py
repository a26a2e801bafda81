"""The ``workflow.yaml`` contract: models, safe loading, validation, expressions, schema.

Import what you need from its modules (``lockstep.spec.load``, ``lockstep.spec.models``…):
this package itself imports nothing, so a light module of it (durations, say) stays light.
"""

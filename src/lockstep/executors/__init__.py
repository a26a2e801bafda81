"""Step executors: they run one step attempt in a private workspace and report a result.

Executors never decide a run's fate; the engine does, from the ``StepResult`` they return.
"""

"""The deployment manager's logic: desired state as data (``model``) and the plan that
changes it (``plan``). Storage, the API and the reconciler sit around it, never inside."""

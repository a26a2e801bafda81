"""REST API ``/api/v1``: an app factory and one router per resource."""

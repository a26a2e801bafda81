"""The web UI: static pages (``static/``) served by ``lockstep server``, speaking the API."""

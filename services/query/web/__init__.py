"""The web dashboard: static pages that talk to the JSON API with the session cookie."""

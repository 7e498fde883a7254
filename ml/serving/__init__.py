"""Endpoint serving: the inference handler and the image's HTTP server."""

"""The HTTP API (FastAPI): health and live tap state; the registry and more come later."""

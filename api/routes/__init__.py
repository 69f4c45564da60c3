"""The API's routes, one module per part of the registry; `api.app` includes them all."""

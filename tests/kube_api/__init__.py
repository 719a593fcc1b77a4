"""A Kubernetes API test server (see server.py) and its test-only TLS material."""

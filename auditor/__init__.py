"""mesh-audit: find Istio configuration that the active data plane (sidecar or ambient) ignores."""

__version__ = "0.1.0"

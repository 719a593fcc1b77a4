"""YAML manifests and `kubectl get -o yaml` Lists: documents with their lines
(`documents`), and a large List read item by item, in forked shares (`lists`)."""

"""What every layer stands on: object kinds, Istio versions, errors, coverage gaps, YAML
reading, file output, worker processes and the wording helpers. Imports nothing else
of mesh-audit."""

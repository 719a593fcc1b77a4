"""Snapshot files, the one input format mesh-audit writes: the format and its header
(`file`, `header`), reading one whole or in forked shares (`read`, `shares`), for one
cluster or several."""

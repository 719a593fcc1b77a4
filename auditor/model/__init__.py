"""The data that flows through the pipeline: the snapshot of a cluster (objects, components,
several clusters) and the report of findings made from it."""

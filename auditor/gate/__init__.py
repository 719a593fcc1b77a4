"""Finishing a report for its reader: the project's config file, suppressions and baselines,
where each finding sits in the user's files, and the comparison of two reports."""

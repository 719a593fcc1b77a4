"""Print the digest list of the built-in rule catalog (auditor.rulebook.catalog), each
rule validated the full way first. After changing a built-in rule:

    python scripts/rule-digests.py > rules/validated.sha256
"""

from auditor.rulebook import builtin_rules_dir, catalog_digests

print(catalog_digests(builtin_rules_dir()), end="")

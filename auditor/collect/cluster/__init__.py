"""Read a live cluster: only GET requests, only the kinds the audit needs, never Secrets.

The official `kubernetes` client does what it is good at: kubeconfig and contexts,
in-cluster service accounts, client certificates, exec credential plugins, TLS and
proxies (`connect`). The bulk LISTs bypass its typed models (about 40x slower on big
lists): pages of `limit=500` are fetched as raw JSON over the client's connection pool
(`http`) and parsed with orjson, several resource types at a time, with the garbage
collector paused (`lister`, `collector`).

Every resource type ends up either collected or named in `Collection.not_collected`
with the reason, so a partial view of the cluster is never mistaken for a clean one.
This package is the only one that imports the kubernetes client, and only when a
cluster is read (over a second of import time that scans of files must not pay).
"""

from auditor.collect.cluster.collector import collect
from auditor.collect.cluster.kubeconfig import ClusterError, Connection, connect
from auditor.collect.cluster.http import RetryPolicy
from auditor.collect.cluster.progress import Progress
from auditor.collect.cluster.spool import Spool
from auditor.collect.collection import Collection
from auditor.core.coverage import Gap

__all__ = ["ClusterError", "Collection", "Connection", "Gap", "Progress", "RetryPolicy", "Spool", "collect", "connect"]

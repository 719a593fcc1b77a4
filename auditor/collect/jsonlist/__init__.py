"""`kubectl get -o json` Lists (and JSON arrays), read item by item: split into raw items
and decoded one at a time, in forked shares when large (`items`), a large file through a
read-only mapping (`mapped`)."""

-- workload 4: COPY of the whole table to a file (superuser, server side)
COPY customers TO '/dev/null';

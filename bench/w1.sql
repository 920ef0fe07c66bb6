-- workload 1: point read of the tagged columns by primary key
\set id random(1, :rows)
SELECT full_name, phone FROM customers WHERE id = :id;

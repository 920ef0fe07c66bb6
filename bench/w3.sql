-- workload 3: point read of an untagged column
\set id random(1, :rows)
SELECT city FROM customers WHERE id = :id;

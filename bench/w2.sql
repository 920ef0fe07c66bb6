-- workload 2: 100-row range read of the tagged columns
\set id random(1, :rows - 99)
SELECT full_name, phone FROM customers WHERE id BETWEEN :id AND :id + 99;

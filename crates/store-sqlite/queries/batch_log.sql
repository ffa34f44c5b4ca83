-- The engine's batch log: every mutation of every retained batch, in commit order.
SELECT seq, idx, op, key, value
FROM engine_batch_log
ORDER BY seq, idx;

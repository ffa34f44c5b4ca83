-- One account's postings, oldest first, with the account's balance after each.
-- Parameters: :book and :path (in the sqlite3 shell: .param set :book main).
SELECT seq,
       at,
       hex(txid) AS txid,
       idx,
       asset,
       direction,
       amount,
       balance_after
FROM ledger_postings
WHERE book = :book AND path = :path
ORDER BY seq, idx;

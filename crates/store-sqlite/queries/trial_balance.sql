-- Trial balance per book and asset: the debit and credit sums of every posting.
-- SUM is exact while a sum fits in 64 bits (SQLite stops with "integer overflow" beyond);
-- ledger_totals.sql reads the exact 128-bit sums the ledger keeps.
SELECT book,
       asset,
       SUM(CASE direction WHEN 'debit' THEN amount ELSE 0 END) AS debits,
       SUM(CASE direction WHEN 'credit' THEN amount ELSE 0 END) AS credits
FROM ledger_postings
GROUP BY book, asset
ORDER BY book, asset;

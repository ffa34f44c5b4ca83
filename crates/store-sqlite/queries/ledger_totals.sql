-- Lifetime debit and credit sums per book and asset, exact (128-bit, decimal text).
SELECT book, asset, debits, credits
FROM ledger_totals
ORDER BY book, asset;

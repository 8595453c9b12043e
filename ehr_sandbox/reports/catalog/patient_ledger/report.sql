-- after the shared block ledger_transactions (report.toml `shared`)
,posted AS (  -- one row per day, claim and kind (a move between balances changes no total)
    SELECT day AS posted, kind AS type, claim,
           CAST(sum(amount) FILTER (WHERE kind = 'charge') AS DECIMAL(12, 2)) AS charge,
           CAST(-sum(amount) FILTER (WHERE kind IN ('insurer-payment', 'patient-payment')) AS DECIMAL(12, 2)) AS payment,
           CAST(-sum(amount) FILTER (WHERE kind IN ('contractual', 'write-off')) AS DECIMAL(12, 2)) AS adjustment,
           CAST(sum(amount) FILTER (WHERE kind = 'refund') AS DECIMAL(12, 2)) AS refund
    FROM txn
    WHERE patient = $patient
      AND kind IN ('charge', 'insurer-payment', 'patient-payment', 'contractual', 'write-off', 'refund')
    GROUP BY day, kind, claim
)
SELECT posted, type, claim,
       coalesce(charge, 0) AS charge, coalesce(payment, 0) AS payment,
       coalesce(adjustment, 0) AS adjustment, coalesce(refund, 0) AS refund,
       CAST(sum(coalesce(charge, 0) - coalesce(payment, 0) - coalesce(adjustment, 0) + coalesce(refund, 0)) OVER (
           ORDER BY posted, claim NULLS LAST, type ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS DECIMAL(12, 2)) AS balance
FROM posted
ORDER BY posted, claim NULLS LAST, type

WITH tx AS (
    SELECT c.created AS posted, 'charge' AS type, c.id AS claim,
           CAST(coalesce(c.total, 0) AS DECIMAL(12, 2)) AS charge,
           CAST(0 AS DECIMAL(12, 2)) AS payment,
           CAST(0 AS DECIMAL(12, 2)) AS adjustment
    FROM claim c
    WHERE c.patient = $patient
    UNION ALL
    SELECT r.created, 'insurance payment', r.claim,
           CAST(0 AS DECIMAL(12, 2)),
           CAST(coalesce(r.payment, 0) AS DECIMAL(12, 2)),
           CAST(coalesce(r.adjustment, 0) AS DECIMAL(12, 2))
    FROM claim_response r
    JOIN claim c ON c.id = r.claim
    WHERE c.patient = $patient
)
SELECT posted, type, claim, charge, payment, adjustment,
       CAST(sum(charge - payment - adjustment) OVER (
           ORDER BY posted, type, claim ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS DECIMAL(12, 2)) AS balance
FROM tx
ORDER BY posted, type, claim

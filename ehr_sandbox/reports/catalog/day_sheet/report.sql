WITH tx AS (
    SELECT 'charge' AS type, c.id AS claim, c.patient, c.created AS posted,
           CAST(coalesce(c.total, 0) AS DECIMAL(12, 2)) AS charges,
           CAST(0 AS DECIMAL(12, 2)) AS payments,
           CAST(0 AS DECIMAL(12, 2)) AS adjustments
    FROM claim c
    WHERE substr(c.created, 1, 10) = $date
    UNION ALL
    SELECT 'insurance payment', r.claim, coalesce(r.patient, c.patient), r.created,
           CAST(0 AS DECIMAL(12, 2)),
           CAST(coalesce(r.payment, 0) AS DECIMAL(12, 2)),
           CAST(coalesce(r.adjustment, 0) AS DECIMAL(12, 2))
    FROM claim_response r
    LEFT JOIN claim c ON c.id = r.claim
    WHERE substr(r.created, 1, 10) = $date
)
SELECT tx.type, tx.claim, p.mrn, coalesce(p.family, p.family_any) || ', ' || coalesce(p.given, '') AS patient, tx.posted, tx.charges, tx.payments, tx.adjustments
FROM tx
LEFT JOIN patient p ON p.id = tx.patient
ORDER BY tx.posted, tx.type, tx.claim

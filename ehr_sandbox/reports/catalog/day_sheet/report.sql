-- after the shared block ledger_transactions (report.toml `shared`)
,posted AS (  -- the day sheet's columns (a move between the insurance and patient balance is none)
    SELECT kind, claim, patient, day,
           CASE WHEN kind = 'charge' THEN amount ELSE 0 END AS charges,
           CASE WHEN kind IN ('insurer-payment', 'patient-payment') THEN -amount ELSE 0 END AS payments,
           CASE WHEN kind IN ('contractual', 'write-off') THEN -amount ELSE 0 END AS adjustments,
           CASE WHEN kind = 'refund' THEN amount ELSE 0 END AS refunds
    FROM txn
    WHERE day = $date
      AND kind IN ('charge', 'insurer-payment', 'patient-payment', 'contractual', 'write-off', 'refund')
)
SELECT t.kind AS type, t.claim, p.mrn,
       coalesce(p.family, p.family_any) || ', ' || coalesce(p.given, '') AS patient,
       t.day AS posted,
       CAST(sum(t.charges) AS DECIMAL(12, 2)) AS charges,
       CAST(sum(t.payments) AS DECIMAL(12, 2)) AS payments,
       CAST(sum(t.adjustments) AS DECIMAL(12, 2)) AS adjustments,
       CAST(sum(t.refunds) AS DECIMAL(12, 2)) AS refunds
FROM posted t
LEFT JOIN patient p ON p.id = t.patient
GROUP BY t.kind, t.claim, t.patient, p.mrn, p.family, p.family_any, p.given, t.day
ORDER BY posted, type, t.claim, mrn

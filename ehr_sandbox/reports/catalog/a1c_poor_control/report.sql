WITH dm AS (
    SELECT DISTINCT c.patient FROM condition c
    WHERE (c.icd10 LIKE 'E10%' OR c.icd10 LIKE 'E11%' OR c.icd10 LIKE 'E13%') AND coalesce(c.clinical_status, 'active') IN ('active', 'recurrence', 'relapse') AND coalesce(c.verification_status, '') NOT IN ('entered-in-error', 'refuted') AND (c.onset IS NULL OR substr(c.onset, 1, 10) <= $period_end)
),
last_a1c AS (
    SELECT o.patient, o.effective, o.value
    FROM observation o
    WHERE o.code IN ('4548-4', '17856-6') AND o.status IN ('final', 'amended', 'corrected') AND substr(o.effective, 1, 10) BETWEEN $period_start AND $period_end AND o.value IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY o.patient ORDER BY o.effective DESC) = 1
),
population AS (
    SELECT p.id, p.mrn,
           CAST(floor(date_diff('day', CAST(p.birth_date AS DATE), CAST($period_end AS DATE)) / 365.25) AS INTEGER) AS age
    FROM patient p JOIN dm ON dm.patient = p.id
    WHERE length(p.birth_date) = 10 AND coalesce(p.deceased, FALSE) = FALSE
      AND (p.deceased_date IS NULL OR substr(p.deceased_date, 1, 10) > $period_end)
)
SELECT d.id AS patient, d.mrn, d.age, a.effective AS last_a1c_date, a.value AS last_a1c,
       (a.value IS NULL OR a.value > 9) AS poor_control
FROM population d
LEFT JOIN last_a1c a ON a.patient = d.id
WHERE d.age BETWEEN 18 AND 75
ORDER BY d.mrn

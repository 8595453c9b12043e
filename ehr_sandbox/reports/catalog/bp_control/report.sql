WITH htn AS (
    SELECT DISTINCT c.patient FROM condition c
    WHERE (c.icd10 LIKE 'I10%' OR c.icd10 LIKE 'I11%' OR c.icd10 LIKE 'I12%' OR c.icd10 LIKE 'I13%' OR c.icd10 LIKE 'I15%' OR c.icd10 LIKE 'I16%') AND coalesce(c.clinical_status, 'active') IN ('active', 'recurrence', 'relapse') AND coalesce(c.verification_status, '') NOT IN ('entered-in-error', 'refuted') AND (c.onset IS NULL OR substr(c.onset, 1, 10) <= $period_end)
),
bp AS (
    -- One reading per patient and time: panel components or separate systolic/diastolic observations.
    SELECT o.patient, o.effective,
           max(CASE WHEN o.code = '8480-6' THEN o.value END) AS systolic,
           max(CASE WHEN o.code = '8462-4' THEN o.value END) AS diastolic
    FROM observation o
    WHERE o.code IN ('8480-6', '8462-4') AND o.status IN ('final', 'amended', 'corrected') AND substr(o.effective, 1, 10) BETWEEN $period_start AND $period_end
    GROUP BY o.patient, o.effective
),
last_bp AS (
    -- The most recent reading INSIDE the period (not the latest ever).
    SELECT * FROM bp
    WHERE systolic IS NOT NULL AND diastolic IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY patient ORDER BY effective DESC) = 1
),
population AS (
    SELECT p.id, p.mrn,
           CAST(floor(date_diff('day', CAST(p.birth_date AS DATE), CAST($period_end AS DATE)) / 365.25) AS INTEGER) AS age
    FROM patient p JOIN htn h ON h.patient = p.id
    WHERE length(p.birth_date) = 10 AND coalesce(p.deceased, FALSE) = FALSE
      AND (p.deceased_date IS NULL OR substr(p.deceased_date, 1, 10) > $period_end)
)
SELECT d.id AS patient, d.mrn, d.age, b.effective AS last_bp_date, b.systolic, b.diastolic,
       coalesce(b.systolic < 140 AND b.diastolic < 90, FALSE) AS controlled
FROM population d
LEFT JOIN last_bp b ON b.patient = d.id
WHERE d.age BETWEEN 18 AND 85
ORDER BY d.mrn

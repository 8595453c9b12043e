WITH htn AS (
    SELECT DISTINCT c.patient FROM condition c WHERE (c.icd10 LIKE 'I10%' OR c.icd10 LIKE 'I11%' OR c.icd10 LIKE 'I12%' OR c.icd10 LIKE 'I13%' OR c.icd10 LIKE 'I15%' OR c.icd10 LIKE 'I16%') AND coalesce(c.clinical_status, 'active') IN ('active', 'recurrence', 'relapse') AND coalesce(c.verification_status, '') NOT IN ('entered-in-error', 'refuted')
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
)
SELECT p.id AS patient, p.mrn, coalesce(p.family, p.family_any) || ', ' || coalesce(p.given, '') AS name, b.effective AS last_bp_date, b.systolic, b.diastolic
FROM htn h
JOIN patient p ON p.id = h.patient
JOIN last_bp b ON b.patient = h.patient
WHERE b.systolic >= 140 OR b.diastolic >= 90
ORDER BY p.mrn

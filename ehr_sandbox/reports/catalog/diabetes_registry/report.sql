WITH dm AS (
    SELECT c.patient, min(c.icd10) AS diabetes_code FROM condition c WHERE (c.icd10 LIKE 'E10%' OR c.icd10 LIKE 'E11%' OR c.icd10 LIKE 'E13%') AND coalesce(c.clinical_status, 'active') IN ('active', 'recurrence', 'relapse') AND coalesce(c.verification_status, '') NOT IN ('entered-in-error', 'refuted') GROUP BY c.patient
),
last_a1c AS (
    SELECT o.patient, o.effective, o.value
    FROM observation o
    WHERE o.code IN ('4548-4', '17856-6') AND o.status IN ('final', 'amended', 'corrected') AND substr(o.effective, 1, 10) BETWEEN $period_start AND $period_end AND o.value IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY o.patient ORDER BY o.effective DESC) = 1
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
SELECT p.id AS patient, p.mrn, coalesce(p.family, p.family_any) || ', ' || coalesce(p.given, '') AS name,
       CAST(floor(date_diff('day', CAST(p.birth_date AS DATE), CAST($period_end AS DATE)) / 365.25) AS INTEGER) AS age,
       d.diabetes_code,
       a.effective AS last_a1c_date, a.value AS last_a1c, a.value > 9 AS a1c_over_9,
       b.effective AS last_bp_date, b.systolic, b.diastolic
FROM dm d
JOIN patient p ON p.id = d.patient
LEFT JOIN last_a1c a ON a.patient = d.patient
LEFT JOIN last_bp b ON b.patient = d.patient
ORDER BY p.mrn

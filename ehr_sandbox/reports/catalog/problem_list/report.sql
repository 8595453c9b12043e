SELECT c.patient,
       p.mrn,
       c.id AS condition,
       coalesce(c.icd10, c.code) AS code,
       coalesce(c.display, c.text) AS description,
       c.clinical_status,
       c.category,
       c.onset,
       c.recorded_date
FROM condition c
LEFT JOIN patient p ON p.id = c.patient
WHERE ($patient IS NULL OR c.patient = $patient)
  AND coalesce(c.clinical_status, 'active') IN ('active', 'recurrence', 'relapse') AND coalesce(c.verification_status, '') NOT IN ('entered-in-error', 'refuted')
ORDER BY p.mrn, c.onset, c.id

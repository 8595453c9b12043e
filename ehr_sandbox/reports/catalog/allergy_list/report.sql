SELECT a.patient,
       p.mrn,
       a.id AS allergy,
       coalesce(a.substance, a.text) AS substance,
       a.criticality,
       a.reaction,
       a.clinical_status,
       a.verification_status,
       a.recorded_date
FROM allergy a
LEFT JOIN patient p ON p.id = a.patient
WHERE ($patient IS NULL OR a.patient = $patient)
  AND coalesce(a.clinical_status, 'active') = 'active'
  AND coalesce(a.verification_status, '') NOT IN ('entered-in-error', 'refuted')
ORDER BY p.mrn, a.criticality DESC, a.id

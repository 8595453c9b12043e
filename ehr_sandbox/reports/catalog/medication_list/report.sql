SELECT m.patient,
       p.mrn,
       m.id AS medication_request,
       m.rxnorm,
       coalesce(m.medication, m.medication_text) AS medication,
       m.dosage,
       m.status,
       m.authored_on
FROM medication_request m
LEFT JOIN patient p ON p.id = m.patient
WHERE ($patient IS NULL OR m.patient = $patient)
  AND m.status IN ('active', 'on-hold')
ORDER BY p.mrn, m.authored_on DESC, m.id

SELECT substr(c.created, 1, 10) AS date,
       c.id AS claim,
       p.mrn,
       coalesce(p.family, p.family_any) || ', ' || coalesce(p.given, '') AS patient,
       trim(coalesce(pr.prefix || ' ', '') || coalesce(pr.given || ' ', '') || coalesce(pr.family, '')) AS provider,
       i.sequence AS line,
       i.code,
       i.description,
       (SELECT string_agg(d.icd10, ', ' ORDER BY list_position(i.diagnosis_pointers, d.sequence))
          FROM claim_diagnosis d
         WHERE d.claim = c.id AND list_contains(i.diagnosis_pointers, d.sequence)) AS diagnoses,
       i.quantity,
       CAST(i.net AS DECIMAL(12, 2)) AS charge
FROM claim c
JOIN claim_item i ON i.claim = c.id
LEFT JOIN patient p ON p.id = c.patient
LEFT JOIN encounter e ON e.id = i.encounter
LEFT JOIN practitioner pr ON pr.id = coalesce(e.practitioner, c.provider)
WHERE c.patient = $patient
  AND ($date IS NULL OR substr(c.created, 1, 10) = $date)
ORDER BY c.created, c.id, i.sequence

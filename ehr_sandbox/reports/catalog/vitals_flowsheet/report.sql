SELECT substr(o.effective, 1, 10) AS date,
       o.effective,
       o.encounter,
       max(CASE WHEN o.code = '8480-6' THEN o.value END) AS systolic,
       max(CASE WHEN o.code = '8462-4' THEN o.value END) AS diastolic,
       max(CASE WHEN o.code = '8867-4' THEN o.value END) AS heart_rate,
       max(CASE WHEN o.code = '9279-1' THEN o.value END) AS respiratory_rate,
       max(CASE WHEN o.code = '8310-5' THEN o.value END) AS temperature_c,
       max(CASE WHEN o.code = '29463-7' THEN o.value END) AS weight_kg,
       max(CASE WHEN o.code = '8302-2' THEN o.value END) AS height_cm,
       max(CASE WHEN o.code = '39156-5' THEN o.value END) AS bmi,
       max(CASE WHEN o.code IN ('59408-5', '2708-6') THEN o.value END) AS spo2
FROM observation o
WHERE o.patient = $patient
  AND o.status NOT IN ('entered-in-error', 'cancelled')
  AND o.code IN ('8480-6', '8462-4', '8867-4', '9279-1', '8310-5', '29463-7', '8302-2', '39156-5', '59408-5', '2708-6')
  AND o.value IS NOT NULL
GROUP BY o.effective, o.encounter
ORDER BY o.effective

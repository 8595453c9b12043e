-- Appointments whose local start date is $date.
SELECT a.id AS appointment,
       substr(a.start, 12, 5) AS time,
       a.start,
       a."end" AS "end",
       p.mrn,
       coalesce(p.family, p.family_any) || ', ' || coalesce(p.given, '') AS patient,
       trim(coalesce(pr.prefix || ' ', '') || coalesce(pr.given || ' ', '') || coalesce(pr.family, '')) AS provider,
       a.status,
       a.status = 'noshow' AS no_show,
       a.service
FROM appointment a
LEFT JOIN patient p ON p.id = a.patient
LEFT JOIN practitioner pr ON pr.id = a.practitioner
WHERE substr(a.start, 1, 10) = $date
ORDER BY a.start, a.id

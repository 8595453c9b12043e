WITH schedule(series, cvx_codes, min_age_years, max_age_years, doses_required, repeat_days) AS (
    VALUES
        ('Influenza', ['140', '141', '150', '153', '155', '158', '161', '171', '185', '186', '197', '205'], 0.5, NULL, 1, 365),
        ('Td/Tdap', ['115', '113', '09', '139', '138'], 11, NULL, 1, 3650),
        ('Pneumococcal', ['133', '215', '216', '33', '152'], 65, NULL, 1, NULL),
        ('Zoster (RZV)', ['187'], 50, NULL, 2, NULL),
        ('HPV', ['165', '62', '118'], 11, 26, 2, NULL),
        ('MMR', ['03', '94'], 1, 18, 2, NULL),
        ('Hepatitis B', ['08', '43', '44', '45', '110'], 0, 18, 3, NULL)
),
people AS (
    SELECT p.id, p.mrn, coalesce(p.family, p.family_any) || ', ' || coalesce(p.given, '') AS name,
           date_diff('day', CAST(p.birth_date AS DATE), CAST($as_of AS DATE)) / 365.25 AS age_years
    FROM patient p
    WHERE coalesce(p.deceased, FALSE) = FALSE
      AND p.deceased_date IS NULL
      AND length(p.birth_date) = 10
      AND p.birth_date <= $as_of
      AND ($patient IS NULL OR p.id = $patient)
),
doses AS (
    -- Only doses actually given count: not-done and entered-in-error are not immunity.
    SELECT i.patient, i.cvx, substr(i.occurrence, 1, 10) AS day
    FROM immunization i
    WHERE i.status = 'completed' AND substr(i.occurrence, 1, 10) <= $as_of
),
eligible AS (
    SELECT p.*, s.*
    FROM people p
    JOIN schedule s
      ON p.age_years >= s.min_age_years
     AND (s.max_age_years IS NULL OR p.age_years < s.max_age_years + 1)
),
counted AS (
    SELECT e.id, e.series, count(d.day) AS doses_given, max(d.day) AS last_dose
    FROM eligible e
    LEFT JOIN doses d ON d.patient = e.id AND list_contains(e.cvx_codes, d.cvx)
    GROUP BY e.id, e.series
)
SELECT e.id AS patient,
       e.mrn,
       e.name,
       CAST(floor(e.age_years) AS INTEGER) AS age,
       e.series,
       c.doses_given,
       e.doses_required,
       c.last_dose,
       CASE WHEN c.doses_given = 0 THEN 'never given'
            WHEN c.doses_given < e.doses_required THEN 'series incomplete'
            ELSE 'booster due' END AS reason
FROM eligible e
JOIN counted c ON c.id = e.id AND c.series = e.series
WHERE c.doses_given < e.doses_required
   OR (e.repeat_days IS NOT NULL
       AND date_diff('day', CAST(c.last_dose AS DATE), CAST($as_of AS DATE)) > e.repeat_days)
ORDER BY e.mrn, e.series

WITH past AS (
    SELECT a.practitioner, a.status
    FROM appointment a
    WHERE substr(a.start, 1, 10) BETWEEN $period_start AND $period_end
      AND a.status IN ('fulfilled', 'arrived', 'checked-in', 'noshow')
)
SELECT CASE WHEN GROUPING(past.practitioner) = 1 THEN 'All providers'
            ELSE coalesce(max(trim(coalesce(pr.prefix || ' ', '') || coalesce(pr.given || ' ', '') || coalesce(pr.family, ''))), past.practitioner, 'unassigned') END AS provider,
       count(*) AS appointments,
       count(*) FILTER (WHERE past.status = 'noshow') AS no_shows,
       round(count(*) FILTER (WHERE past.status = 'noshow') / nullif(count(*), 0), 4) AS no_show_rate
FROM past
LEFT JOIN practitioner pr ON pr.id = past.practitioner
GROUP BY GROUPING SETS ((past.practitioner), ())
ORDER BY GROUPING(past.practitioner), provider

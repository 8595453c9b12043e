WITH buckets(bucket, lo, hi, ord) AS (
    VALUES ('0-30', 0, 30, 1), ('31-60', 31, 60, 2), ('61-90', 61, 90, 3), ('91-120', 91, 120, 4), ('>120', 121, NULL, 5)
),
received AS (
    SELECT r.claim,
           sum(CAST(coalesce(r.payment, 0) AS DECIMAL(12, 2))) AS paid,
           sum(CAST(coalesce(r.adjustment, 0) AS DECIMAL(12, 2))) AS adjusted
    FROM claim_response r
    WHERE substr(r.created, 1, 10) <= $as_of
    GROUP BY r.claim
),
open_claims AS (
    SELECT c.id,
           date_diff('day', CAST(substr(c.created, 1, 10) AS DATE), CAST($as_of AS DATE)) AS age_days,
           rc.claim IS NULL AS with_payer,
           CAST(coalesce(c.total, 0) AS DECIMAL(12, 2)) - coalesce(rc.paid, 0) - coalesce(rc.adjusted, 0) AS balance
    FROM claim c
    LEFT JOIN received rc ON rc.claim = c.id
    WHERE substr(c.created, 1, 10) <= $as_of
      AND coalesce(c.status, 'active') NOT IN ('entered-in-error', 'cancelled')
)
SELECT b.bucket,
       count(o.id) AS claims,
       CAST(coalesce(sum(o.balance) FILTER (WHERE o.with_payer), 0) AS DECIMAL(12, 2)) AS insurance,
       CAST(coalesce(sum(o.balance) FILTER (WHERE NOT o.with_payer), 0) AS DECIMAL(12, 2)) AS patient,
       CAST(coalesce(sum(o.balance), 0) AS DECIMAL(12, 2)) AS balance
FROM buckets b
LEFT JOIN open_claims o
  ON o.balance > 0 AND o.age_days >= b.lo AND (b.hi IS NULL OR o.age_days <= b.hi)
GROUP BY b.bucket, b.ord
ORDER BY b.ord

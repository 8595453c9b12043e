-- after the shared block ledger_transactions (report.toml `shared`)
, buckets(bucket, lo, hi, ord) AS (
    VALUES ('0-30', 0, 30, 1), ('31-60', 31, 60, 2), ('61-90', 61, 90, 3), ('91-120', 91, 120, 4), ('>120', 121, NULL, 5)
),
per_claim AS (  -- each claim's insurance and patient balance as of the day
    SELECT patient, claim, bucket, sum(amount) AS amount
    FROM txn
    WHERE day <= $as_of AND claim IS NOT NULL
    GROUP BY patient, claim, bucket
),
unapplied AS (  -- patient money not applied to a claim
    SELECT patient, sum(amount) AS amount
    FROM txn
    WHERE day <= $as_of AND claim IS NULL
    GROUP BY patient
),
service AS (  -- a claim's age counts from its service day
    SELECT id, substr(coalesce(service_start, created), 1, 10) AS day FROM claim
),
applied AS (  -- an unapplied credit pays the patient's oldest patient balances first
    SELECT pc.patient, pc.claim,
           least(pc.amount, greatest(-u.amount - coalesce(sum(pc.amount) OVER (
               PARTITION BY pc.patient ORDER BY s.day, pc.claim
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0), 0)) AS used
    FROM per_claim pc
    JOIN unapplied u ON u.patient = pc.patient
    LEFT JOIN service s ON s.id = pc.claim
    WHERE pc.bucket = 'patient' AND pc.amount > 0
),
open_balances AS (
    SELECT pc.claim, pc.bucket, pc.amount - coalesce(a.used, 0) AS amount,
           greatest(date_diff('day', CAST(coalesce(s.day, $as_of) AS DATE), CAST($as_of AS DATE)), 0) AS age_days
    FROM per_claim pc
    LEFT JOIN applied a ON a.patient = pc.patient AND a.claim = pc.claim AND pc.bucket = 'patient'
    LEFT JOIN service s ON s.id = pc.claim
    UNION ALL  -- what is left of a credit shows in 0-30
    SELECT NULL, 'patient', u.amount + coalesce((SELECT sum(a.used) FROM applied a WHERE a.patient = u.patient), 0), 0
    FROM unapplied u
)
SELECT b.bucket,
       count(DISTINCT o.claim) FILTER (WHERE o.amount <> 0) AS claims,
       CAST(coalesce(sum(o.amount) FILTER (WHERE o.bucket = 'insurance'), 0) AS DECIMAL(12, 2)) AS insurance,
       CAST(coalesce(sum(o.amount) FILTER (WHERE o.bucket = 'patient'), 0) AS DECIMAL(12, 2)) AS patient,
       CAST(coalesce(sum(o.amount), 0) AS DECIMAL(12, 2)) AS balance
FROM buckets b
LEFT JOIN open_balances o
  ON o.age_days >= b.lo AND (b.hi IS NULL OR o.age_days <= b.hi)
GROUP BY b.bucket, b.ord
ORDER BY b.ord

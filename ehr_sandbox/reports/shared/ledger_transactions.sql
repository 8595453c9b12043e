-- The ledger's transactions (the accounting model: ehr_sandbox/workflows/ledger.py, module
-- docstring). amount is signed (+ raises the balance); bucket is the balance it moves.
WITH claims AS (  -- sent claims; a focal insurance after the first makes a crossover claim
    SELECT id, patient, status, substr(created, 1, 10) AS day,
           CASE WHEN coalesce(focal_sequence, 1) <> 1
                THEN coalesce(split_part(related, '/', 2), id) END AS primary_claim
    FROM claim
    WHERE coalesce(use, 'claim') = 'claim'
),
lines AS (  -- each line of an active claim
    SELECT c.day, c.patient, c.id AS claim, c.primary_claim,
           CAST(coalesce(i.net, 0) AS DECIMAL(12, 2)) AS amount
    FROM claims c
    JOIN claim_item i ON i.claim = c.id
    WHERE c.status = 'active'
),
adjudication AS (  -- the payer's answer per claim line, summed by category and CARC group
    SELECT substr(r.created, 1, 10) AS day, c.patient, c.id AS claim, a.claim_response,
           a.item_sequence,
           bool_or(NOT a.grp AND a.category = 'eligible') AS has_eligible,
           coalesce(sum(a.amt) FILTER (WHERE NOT a.grp AND a.category = 'submitted'), 0) AS submitted,
           coalesce(sum(a.amt) FILTER (WHERE NOT a.grp AND a.category = 'eligible'), 0) AS eligible,
           coalesce(sum(a.amt) FILTER (WHERE NOT a.grp AND a.category = 'benefit'), 0) AS benefit,
           coalesce(sum(a.amt) FILTER (WHERE NOT a.grp AND a.category IN ('copay', 'deductible')), 0)
               + coalesce(sum(a.amt) FILTER (WHERE a.grp AND a.category = 'PR' AND a.reason = '2'), 0)
               AS copay_deductible_coinsurance,
           coalesce(sum(a.amt) FILTER (WHERE a.grp AND a.category = 'CO' AND a.reason = '45'), 0) AS co45,
           -- OA-23 on a secondary's answer: what the primary settled; it moves no money
           coalesce(sum(a.amt) FILTER (WHERE a.grp AND a.category = 'OA' AND a.reason = '23'), 0) AS prior,
           -- CO/OA denials stay on the insurance balance; PR denials are the patient's
           coalesce(sum(a.amt) FILTER (WHERE a.grp AND a.category IN ('CO', 'OA')
                                         AND a.reason NOT IN ('45', '23')), 0) AS denied_co,
           coalesce(sum(a.amt) FILTER (WHERE a.grp AND a.category = 'PR'
                                         AND a.reason NOT IN ('1', '2', '3')), 0) AS denied_pr
    FROM (
        SELECT claim_response, item_sequence, category, coalesce(reason, '') AS reason,
               coalesce(category_system = 'https://x12.org/codes/claim-adjustment-group-codes', false) AS grp,
               CAST(coalesce(amount, 0) AS DECIMAL(12, 2)) AS amt
        FROM claim_adjudication
    ) a
    JOIN claim_response r ON r.id = a.claim_response AND r.status = 'active'
    JOIN claims c ON c.id = r.claim AND c.status = 'active'
    GROUP BY ALL
),
answered AS (
    SELECT day, patient, claim, benefit,
           CASE WHEN has_eligible AND denied_co = 0 AND denied_pr = 0
                THEN submitted - eligible - prior ELSE co45 END AS contractual,
           copay_deductible_coinsurance + denied_pr AS patient_share
    FROM adjudication
),
details AS (  -- PaymentReconciliation details the ledger reads (insurer money comes from answers)
    SELECT coalesce(substr(d.date, 1, 10), substr(d.created, 1, 10)) AS day,
           CASE WHEN d.request LIKE 'Claim/%' THEN o.patient
                WHEN d.request LIKE 'Patient/%' THEN split_part(d.request, '/', 2) END AS patient,
           CASE WHEN d.request LIKE 'Claim/%' THEN split_part(d.request, '/', 2) END AS claim,
           d.kind, coalesce(d.bucket, 'patient') AS bucket, d.method,
           CAST(coalesce(d.amount, 0) AS DECIMAL(12, 2)) AS amount
    FROM payment_detail d
    LEFT JOIN claims o ON d.request = 'Claim/' || o.id
    WHERE d.status = 'active'
      AND d.kind IN ('patient-payment', 'refund', 'write-off', 'transfer-to-patient')
),
txn AS (
    SELECT day, patient, claim, 'charge' AS kind, 'insurance' AS bucket, amount, NULL AS method
    FROM lines WHERE primary_claim IS NULL
    UNION ALL  -- a crossover claim charges nothing new: the patient's share goes back to insurance
    SELECT day, patient, primary_claim, 'transfer-to-secondary', 'patient', -amount, NULL
    FROM lines WHERE primary_claim IS NOT NULL
    UNION ALL
    SELECT day, patient, claim, 'transfer-to-secondary', 'insurance', amount, NULL
    FROM lines WHERE primary_claim IS NOT NULL
    UNION ALL
    SELECT day, patient, claim, 'contractual', 'insurance', -contractual, NULL
    FROM answered WHERE contractual <> 0
    UNION ALL
    SELECT day, patient, claim, 'insurer-payment', 'insurance', -benefit, 'eft'
    FROM answered WHERE benefit <> 0
    UNION ALL
    SELECT day, patient, claim, 'patient-share', 'insurance', -patient_share, NULL
    FROM answered WHERE patient_share <> 0
    UNION ALL
    SELECT day, patient, claim, 'patient-share', 'patient', patient_share, NULL
    FROM answered WHERE patient_share <> 0
    UNION ALL
    SELECT day, patient, claim, kind,
           CASE kind WHEN 'write-off' THEN bucket WHEN 'transfer-to-patient' THEN 'insurance'
                     ELSE 'patient' END,
           CASE WHEN kind = 'refund' THEN amount ELSE -amount END, method
    FROM details WHERE patient IS NOT NULL
    UNION ALL  -- a denied amount billed to the patient also lands on the patient balance
    SELECT day, patient, claim, kind, 'patient', amount, method
    FROM details WHERE patient IS NOT NULL AND kind = 'transfer-to-patient'
)
